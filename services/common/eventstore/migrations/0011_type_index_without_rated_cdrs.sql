-- The index of decisions by type leaves out the guard's rated CDRs (issue 13, lean rows;
-- docs/performance.md proposal 14): one index entry per CDR less, of the ~7.4 each wrote.
--
-- Every query by type asks for rare types: approvals due, dunning's work queue, finance's
-- self-check and dashboard, the bench's and chaos's tariff checks. The one that names
-- guard.CdrRated (the local stack's money summary) sums every rated CDR, which reads the table
-- whatever the index. Rated CDRs are the bulk of the log (one per CDR: 93 % of the guard's
-- decisions in the bench's mix), found by their stream, their claim and the commit order, never by
-- their type.
--
-- The predicate names the type as a literal, not a column or a list: a query with
-- `event_type = ANY($1)` or `IN ($1, $2)` gets a plan for its parameters (Postgres keeps custom
-- plans when the generic one would scan the table), and the planner proves from the constants that
-- the rows asked for are in the index. The type is the published contract's
-- (schemas/decision_types/guard.py CDR_RATED); a column saying "bulk" would cost every row a byte
-- and every query a condition. tests/integration/test_type_index.py fails if the contract renames
-- the type without a migration, or if a query by type stops finding its rows through the index.
--
-- Upgrade: the index is built from the whole table while `events` is locked for writes. On a large
-- store, build it first with CREATE INDEX CONCURRENTLY under this name, check pg_index.indisvalid,
-- then let the workers migrate (the old index is dropped here).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('events_type_position_rare') AND NOT indisvalid) THEN
        RAISE EXCEPTION 'index events_type_position_rare is invalid (a CREATE INDEX CONCURRENTLY that failed):'
            ' drop it and build it again before migrating; the index it replaces is kept meanwhile';
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS events_type_position_rare ON events (event_type, global_position)
    WHERE event_type <> 'guard.CdrRated';
DROP INDEX IF EXISTS events_type_position;
