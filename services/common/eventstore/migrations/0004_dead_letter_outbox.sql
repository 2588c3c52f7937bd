-- Dead letters become durable in Postgres, in the same transaction as the batch's decisions,
-- before the batch's offsets are committed (CONTRACT.DLQ_DURABLE). A relay sends them to
-- `<topic>.dlq` afterwards; one that cannot be sent waits here, counted, and stops nothing.
ALTER TABLE dead_lettered_inputs
    ADD COLUMN IF NOT EXISTS message_key      bytea,
    -- the whole original: a letter on Kafka may carry only its start (truncated)
    ADD COLUMN IF NOT EXISTS original         bytea,
    ADD COLUMN IF NOT EXISTS original_size    integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS published_at     timestamptz,
    ADD COLUMN IF NOT EXISTS attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_error       text,
    ADD COLUMN IF NOT EXISTS next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp();

-- Letters recorded before this migration were sent by the worker that recorded them.
UPDATE dead_lettered_inputs SET published_at = failed_at WHERE published_at IS NULL;

CREATE INDEX IF NOT EXISTS dead_letters_unsent
    ON dead_lettered_inputs (consumer, next_attempt_at) WHERE published_at IS NULL;

-- The service marks letters sent; what was refused and why stays as it was written.
GRANT UPDATE (published_at, attempts, last_error, next_attempt_at) ON dead_lettered_inputs TO wuguan_service;
