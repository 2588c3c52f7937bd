-- The projector follows the log's commit order through the appends that recorded it (event store
-- migration 0014, store.committed_after): it reads them as it reads `events`.
GRANT SELECT ON event_appends TO wuguan_finance;
