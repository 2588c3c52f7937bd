-- A relay reads its own service's rows, not the whole log (docs/performance.md, run 20).
--
-- A relay publishes its service's decisions in commit order (tx_id, global_position), and it found
-- them by walking that order for every service at once (events_commit_order, migration 0005): the
-- cards and dunning relays read every row the guard wrote, one per CDR, to skip it. So they did the
-- guard's volume of reading, and a worker that started walked the guard's whole history before it
-- published anything: in the bench, the cards worker read ~60k guard rows a second for its first
-- seconds, and the card complaints of those seconds waited for it.
--
-- The services other than the guard get the order of their own rows: this index, led by the service.
-- The guard, whose CDRs are the bulk of the log, keeps events_commit_order and skips the others' few
-- rows; its rows are not in this index, so a CDR costs no index entry more. The predicate names the
-- service as a literal, as 0011 names its type: a relay's query (planned for its parameters,
-- db.SERVER_SETTINGS) proves from its service that its rows are here (and store.own_range repeats
-- the predicate for a plan that cannot). The name is schemas.registry.BULK_SERVICE, the guard's;
-- tests/integration/test_relay_reads_its_own_rows.py fails if it changes without a migration. The finance projector reads every service: events_commit_order.
--
-- Upgrade: the index is built from the whole table while `events` is locked for writes. On a large
-- store, build it first with CREATE INDEX CONCURRENTLY under this name and definition, and check
-- pg_index.indisvalid. The first worker to start after the upgrade applies the migration.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('events_service_commit_order') AND NOT indisvalid) THEN
        RAISE EXCEPTION 'index events_service_commit_order is invalid (a CREATE INDEX CONCURRENTLY that failed):'
            ' drop it and build it again before migrating';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('events_service_commit_order')
               AND (pg_get_expr(indpred, indrelid) IS DISTINCT FROM '(service <> ''billing_guard''::text)'
                    OR pg_get_indexdef(indexrelid) NOT LIKE '%(service, tx_id, global_position)%')) THEN
        RAISE EXCEPTION 'index events_service_commit_order exists with another definition than this migration''s:'
            ' drop it (or build it as below) before migrating';
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS events_service_commit_order ON events (service, tx_id, global_position)
    WHERE service <> 'billing_guard';
