-- An input that decides something is recorded by its first decision, not by a row of its own
-- (issue 13, proposal 13): one row and one index entry less per CDR.
--
-- The first stored decision of an input is named by the input alone (services/common/decisions.py
-- `input_decision_id`), so the unique index on event_id both finds a redelivered input and refuses
-- a second decision of it. That decision carries the input's content hash, which tells a resend
-- from a reused eventId with other content, and its offset; its chain names the input's topic and
-- partition. An input that decides nothing keeps a row of its own, in processed_input_rows, as do
-- the inputs of stores written before this migration.
--
-- Upgrade: a worker of an older release writes processed_inputs, which is a view from here on;
-- the database refuses it (42809) and that worker holds its batch, offsets unmoved, until it is
-- replaced. Nothing is lost, but roll the workers over promptly.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS input_hash   text,
    ADD COLUMN IF NOT EXISTS input_offset bigint;

ALTER TABLE IF EXISTS processed_inputs RENAME TO processed_input_rows;

-- Every input a service has consumed, as the table used to hold them (bench, chaos, tests and the
-- local stack's progress read it). Not for the hot path: it scans the log's first decisions.
CREATE OR REPLACE VIEW processed_inputs AS
SELECT consumer, event_id, content_hash, topic, partition, "offset", processed_at
FROM processed_input_rows
UNION ALL
SELECT service, causation_id, input_hash, split_part(chain_id, '/', 2), nullif(split_part(chain_id, '/', 3), '-')::integer,
       input_offset, recorded_at
FROM events
WHERE input_hash IS NOT NULL;

GRANT SELECT ON processed_inputs TO wuguan_service;
