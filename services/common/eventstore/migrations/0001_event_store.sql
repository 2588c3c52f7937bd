-- The decision log (A.EVENT, A.APPEND_ONLY, A.TAMPER_EVIDENT).
-- global_position is assigned under a transaction-scoped advisory lock, so it follows
-- commit order: a reader following positions never skips a row that commits late.
CREATE TABLE IF NOT EXISTS events (
    global_position bigint      PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    service         text        NOT NULL,
    business_time   timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    causation_id    text,
    correlation_id  text,
    payload         jsonb       NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_service_position ON events (service, global_position);
CREATE INDEX IF NOT EXISTS events_type_position ON events (event_type, global_position);

-- The newest link of the hash chain; lets verify notice rows removed from the end.
CREATE TABLE IF NOT EXISTS event_chain_head (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    global_position bigint  NOT NULL,
    hash            bytea   NOT NULL
);

CREATE OR REPLACE FUNCTION events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only (A.APPEND_ONLY): % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS events_no_update_delete ON events;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
DROP TRIGGER IF EXISTS events_no_truncate ON events;
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Inputs already consumed, recorded in the same transaction as the decisions they caused:
-- a redelivered input is skipped, so Kafka's at-least-once becomes exactly-once effect.
CREATE TABLE IF NOT EXISTS processed_inputs (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    content_hash text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);

-- How far each relay has published the log to Kafka.
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    relay           text   PRIMARY KEY,
    global_position bigint NOT NULL
);

-- Timers that decisions asked for and that have not fired or been cancelled yet.
-- A projection of the log: rebuilt from the decisions that schedule and cancel them.
CREATE TABLE IF NOT EXISTS pending_timers (
    timer_id     text        PRIMARY KEY,
    service      text        NOT NULL,
    stream_id    text        NOT NULL,
    partition_key text       NOT NULL,
    due_at       timestamptz NOT NULL,
    -- as the deciding service wrote it: the wake-up carries the same offset, so a replay
    -- renders the same business times to the letter
    due_at_text  text        NOT NULL,
    kind         text        NOT NULL,
    data         jsonb       NOT NULL,
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS pending_timers_due ON pending_timers (service, due_at) WHERE published_at IS NULL;

-- Inputs sent to a dead-letter topic: an audit of what was refused and why, and the memory
-- that keeps a redelivered bad input from being dead-lettered twice.
CREATE TABLE IF NOT EXISTS dead_lettered_inputs (
    consumer  text        NOT NULL,
    topic     text        NOT NULL,
    partition integer     NOT NULL,
    "offset"  bigint      NOT NULL,
    code      text        NOT NULL,
    message   text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, topic, partition, "offset")
);

-- How far business time has advanced for a service: the latest business time among the
-- inputs it has decided (capped near the wall clock). Timers fire against it, so a replay
-- of last quarter wakes each timer in its place among the inputs, not all at once.
CREATE TABLE IF NOT EXISTS business_clocks (
    service   text        PRIMARY KEY,
    watermark timestamptz NOT NULL
);
