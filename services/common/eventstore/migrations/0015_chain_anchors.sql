-- A chain's events are found by sequence number through anchors, not through an index entry on
-- every decision (issue 13, lean rows).
--
-- events_chain_seq (0005) held (chain_id, chain_seq) for every decision. What reads by it reads a
-- run of one chain (the checkpointer and the witness grow a chain's Merkle tree, a proof reads its
-- prefix) or walks every chain (`wuguan verify`), and none needs every entry:
-- - within a chain, positions rise with sequence numbers: an append takes its positions only once
--   it holds its chains' heads (store._PREPARE_APPEND), so one chain's appends take theirs one
--   after the other;
-- - an anchor (chain_anchors) names the position of a chain's event: the first of each append's
--   run of the chain, and every 64th of the chain. The chain's events numbered a..b lie between its
--   last anchor at or before a and its first anchor after b, read by the primary key in position
--   order (store.chain_rows_sql). An append's first event bounds a chain that grows a few events a
--   day to its own appends; every 64th bounds a run of thousands (a bulk load) to 64 of its events;
--   between them lies only what other chains appended meanwhile;
-- - `wuguan verify` walks the log once in position order, each row on to its chain's walk.
-- A chain's sequence numbers stay unique as its head keeps them: every append locks the head,
-- seals from it and moves it on, and the walk names a number out of its place.

-- Upgrade: writers wait while this runs (the lock below: the check and the anchors must see one
-- log), which on a large store is two reads of the whole log; run it in a quiet hour. A worker of
-- an older release takes its positions before it holds its chains' heads and records no anchors:
-- the database refuses its writes from now on (55000, below), and it holds its batch, offsets
-- unmoved, until it is replaced. Nothing is lost, but roll the workers over promptly.
LOCK TABLE events IN SHARE MODE;

-- A chain whose numbers did not rise with positions would be misread from now on: refuse to go on
-- (the check reads the old index in its order, no sort).
DO $$
DECLARE
    misplaced record;
BEGIN
    SELECT chain_id, chain_seq, global_position INTO misplaced FROM (
        SELECT chain_id, chain_seq, global_position,
               lag(global_position) OVER (PARTITION BY chain_id ORDER BY chain_seq) AS before
        FROM events WHERE chain_id IS NOT NULL) AS ordered
    WHERE global_position < before LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'chain % holds event % at position %, before the event numbered ahead of it:'
            ' `wuguan verify` names what was altered; restore the log before upgrading',
            misplaced.chain_id, misplaced.chain_seq, misplaced.global_position
            USING ERRCODE = 'data_corrupted';
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS chain_anchors (
    chain_id text   NOT NULL,
    seq      bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (chain_id, seq)
);

-- The events stored before: each transaction's first event of a chain (its appends of the chain
-- follow one another, the head held to commit), and every 64th.
INSERT INTO chain_anchors (chain_id, seq, position)
SELECT chain_id, min(chain_seq), min(global_position) FROM events WHERE chain_id IS NOT NULL GROUP BY chain_id, tx_id
UNION
SELECT chain_id, chain_seq, global_position FROM events WHERE chain_id IS NOT NULL AND chain_seq % 64 = 1
ON CONFLICT DO NOTHING;

DROP INDEX IF EXISTS events_chain_seq;

-- Append-only as the log is: an anchor moved would hide a chain's events from its readers.
DROP TRIGGER IF EXISTS chain_anchors_no_update_delete ON chain_anchors;
CREATE TRIGGER chain_anchors_no_update_delete BEFORE UPDATE OR DELETE ON chain_anchors
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
DROP TRIGGER IF EXISTS chain_anchors_no_truncate ON chain_anchors;
CREATE TRIGGER chain_anchors_no_truncate BEFORE TRUNCATE ON chain_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

GRANT SELECT, INSERT ON chain_anchors TO wuguan_service;

-- A writer that records its appends and its anchors says so (store.RECORDS_APPENDS); any other
-- insert into the log is refused, a worker from before this migration's included.
CREATE OR REPLACE FUNCTION events_writer_records_appends() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('wuguan.records_appends', true) IS DISTINCT FROM 'with anchors' THEN
        RAISE EXCEPTION 'this writer does not record its appends and chain anchors (a release from before'
            ' migration 0015?): upgrade it' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END $$;
