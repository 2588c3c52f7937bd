-- The projector follows the log in commit order, (tx_id, global_position), since appends no
-- longer share one lock (event store migration 0005). A checkpoint at position P resumes after
-- the row at P, whose tx_id it takes.
ALTER TABLE finance.checkpoint ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT '0';
UPDATE finance.checkpoint c
   SET tx_id = coalesce((SELECT e.tx_id FROM events e WHERE e.global_position = c.global_position), '0');
