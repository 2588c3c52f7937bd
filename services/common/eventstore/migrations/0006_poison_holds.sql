-- Streams held behind an input that failed in processing (CONTRACT.POISON_HOLD, see
-- services/common/runtime/poison_hold.py). Written in the transaction of that input's dead
-- letter; deleted in the transaction that decides the input when it is replayed after a fix.
-- While a row exists, the stream's order-sensitive inputs get a StreamBlocked decision and a
-- `stream_blocked` dead letter instead of being decided against a state that lacks the poison.
CREATE TABLE IF NOT EXISTS held_streams (
    consumer        text        NOT NULL,
    stream_id       text        NOT NULL,
    poison_event_id text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL,
    held_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_id)
);

GRANT SELECT, INSERT, DELETE ON held_streams TO wuguan_service;
