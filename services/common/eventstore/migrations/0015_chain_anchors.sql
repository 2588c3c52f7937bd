-- A chain's events are found by sequence number through anchors, one event in 64, not through an
-- index entry on every decision (issue 13, lean rows).
--
-- events_chain_seq (0005) held (chain_id, chain_seq) for every decision. What reads by it reads a
-- run of one chain (the checkpointer and the witness grow a chain's Merkle tree, a proof reads its
-- prefix) or walks every chain (`wuguan verify`), and none needs every entry:
-- - within a chain, positions rise with sequence numbers: an append takes its positions only once
--   it holds its chains' heads (store._PREPARE_APPEND), so one chain's appends take theirs one
--   after the other. The events of chain C numbered a..b therefore lie between the positions of
--   C's anchor at or before a and its first anchor after b, read by the primary key
--   (store.chain_rows_sql);
-- - `wuguan verify` walks the log once in position order, each row on to its chain's walk, where
--   it walked each chain by this index: every row read once, in the table's own order.
-- A chain's sequence numbers stay unique as its head keeps them: every append locks the head,
-- seals from it and moves it on, and the walk names a number out of its place.

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
        RAISE EXCEPTION 'chain % holds event % at position %, before the event numbered ahead of it: run'
            ' `wuguan verify` and see docs/tamper-evidence.md before upgrading',
            misplaced.chain_id, misplaced.chain_seq, misplaced.global_position
            USING ERRCODE = 'data_corrupted';
    END IF;
END $$;

CREATE INDEX IF NOT EXISTS events_chain_anchors ON events (chain_id, chain_seq) INCLUDE (global_position)
    WHERE chain_seq % 64 = 1;
DROP INDEX IF EXISTS events_chain_seq;
