-- Commit order is kept per append, not per decision (issue 13, lean rows): one index entry less per
-- decision, one row per batch more.
--
-- Readers that follow the log (the relays, the finance projector) go by (tx_id, global_position)
-- and read only transactions older than every one still running (migration 0005). They found that
-- order through an index on every row, events_commit_order, and the services other than the guard
-- through one of their own, events_service_commit_order (0013): an index entry for every decision.
--
-- Now each append records itself once in `event_appends`: its transaction, its service, the first
-- and last position it took and how many decisions it stored. A batch of ~40 CDRs writes one row
-- there, with two index entries, instead of 40 entries in events_commit_order. A reader walks the appends
-- in commit order and takes each one's decisions from the log by position (its primary key), those
-- of the append's transaction and service: positions come from a sequence, so another transaction's
-- may fall within the range, and are left out (store.committed_after).
--
-- An append's positions are taken in one statement, after those of the transaction's appends
-- before it, so one transaction's appends never overlap, and (tx_id, last_position) names an
-- append: readers walk the appends in that order, and the first rows of the appends walked are the
-- first rows in commit order (store.committed_after).
--
-- Rows written before this migration get their appends here: per transaction, each run of one
-- service's rows in position order (a service's rows between two of another's), so that these do
-- not overlap either. The rows from before migration 0005 share one transaction, as a bulk load does.

-- Upgrade: the backfill reads and sorts the whole log once (two window functions) in the migration's
-- transaction; on a large store run it in a quiet hour. A worker of an older release would append
-- without recording its appends, and no reader would see those decisions: the database refuses
-- its writes (55000, below), and it holds its batch, offsets unmoved, until it is replaced. Nothing
-- is lost, but roll the workers over promptly; an older finance API reads commit order from
-- `events` without its index, so replace it too. `wuguan verify` names any decision that no append
-- records.
CREATE TABLE IF NOT EXISTS event_appends (
    tx_id          xid8    NOT NULL DEFAULT pg_current_xact_id(),
    last_position  bigint  NOT NULL,
    first_position bigint  NOT NULL,
    service        text    NOT NULL,
    decisions      integer NOT NULL CHECK (decisions >= 1),
    PRIMARY KEY (tx_id, last_position),
    CHECK (first_position <= last_position)
);
-- A relay reads its own service's appends (it publishes only that service's decisions).
CREATE INDEX IF NOT EXISTS event_appends_service_order ON event_appends (service, tx_id, last_position);

INSERT INTO event_appends (tx_id, last_position, first_position, service, decisions)
SELECT tx_id, max(global_position), min(global_position), service, count(*)
FROM (SELECT tx_id, global_position, service,
             row_number() OVER (PARTITION BY tx_id ORDER BY global_position)
             - row_number() OVER (PARTITION BY tx_id, service ORDER BY global_position) AS run
      FROM events) AS rows
WHERE NOT EXISTS (SELECT 1 FROM event_appends)
GROUP BY tx_id, service, run;

DROP INDEX IF EXISTS events_commit_order;
DROP INDEX IF EXISTS events_service_commit_order;

-- Append-only as the log is: an append removed would hide its decisions from every reader.
DROP TRIGGER IF EXISTS event_appends_no_update_delete ON event_appends;
CREATE TRIGGER event_appends_no_update_delete BEFORE UPDATE OR DELETE ON event_appends
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
DROP TRIGGER IF EXISTS event_appends_no_truncate ON event_appends;
CREATE TRIGGER event_appends_no_truncate BEFORE TRUNCATE ON event_appends
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- A writer that records its appends says so in its transaction (store.RECORDS_APPENDS); any other
-- insert into the log is refused, so no decision is stored that no reader would see.
CREATE OR REPLACE FUNCTION events_writer_records_appends() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('wuguan.records_appends', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'this writer does not record its appends in event_appends (a release from before'
            ' migration 0014?): upgrade it' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS events_writer_records_appends ON events;
CREATE TRIGGER events_writer_records_appends BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_writer_records_appends();

GRANT SELECT, INSERT ON event_appends TO wuguan_service;
