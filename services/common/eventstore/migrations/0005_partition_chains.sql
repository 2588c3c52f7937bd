-- One hash chain per (service, input topic, partition) instead of one for the whole log (issue 13).
--
-- Until now every append took one advisory lock until commit, so global positions followed
-- commit order and one chain ran through the log. That lock capped all services together, on
-- any number of partitions or hosts. Now:
-- - each chain has one writer, the owner of its partition, and its head row (event_chains) is
--   locked only by that writer's transaction; `epoch` fences a former owner left behind by a
--   rebalance (the new owner bumps it when it takes the partition; an append must match it);
-- - global_position comes from a sequence: unique and roughly in time order, but no longer in
--   commit order. Readers that follow the log (relays, the finance projector) follow
--   (tx_id, global_position) instead and read only rows whose transaction is older than every
--   transaction still running (pg_snapshot_xmin), so a late commit is never skipped;
-- - rows written before this migration keep chain_id NULL and stay on the old single chain,
--   whose head is still event_chain_head: `wuguan verify` walks it as before.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS chain_id  text,
    ADD COLUMN IF NOT EXISTS chain_seq bigint,
    -- every row of one transaction shares it: the transaction's id, assigned at its first write
    ADD COLUMN IF NOT EXISTS tx_id     xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE UNIQUE INDEX IF NOT EXISTS events_chain_seq ON events (chain_id, chain_seq) WHERE chain_id IS NOT NULL;
-- The order readers follow; it replaces the (service, position) index the relays used.
CREATE INDEX IF NOT EXISTS events_commit_order ON events (tx_id, global_position);
DROP INDEX IF EXISTS events_service_position;

CREATE SEQUENCE IF NOT EXISTS events_position_seq;
SELECT setval('events_position_seq', greatest(coalesce(max(global_position), 0), 1), count(*) > 0) FROM events;

CREATE TABLE IF NOT EXISTS event_chains (
    chain_id text   PRIMARY KEY,
    seq      bigint NOT NULL,
    hash     bytea  NOT NULL,
    epoch    bigint NOT NULL DEFAULT 0
);

-- Reader checkpoints become (tx_id, global_position). The rows above all carry this migration's
-- transaction id, so a checkpoint at position P resumes after P among them.
ALTER TABLE relay_checkpoints ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT '0';
UPDATE relay_checkpoints c SET tx_id = coalesce((SELECT e.tx_id FROM events e WHERE e.global_position = c.global_position), '0');

GRANT SELECT, INSERT, UPDATE ON event_chains TO wuguan_service;
GRANT USAGE ON SEQUENCE events_position_seq TO wuguan_service;
