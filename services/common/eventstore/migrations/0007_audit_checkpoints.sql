-- Signed checkpoints of the chains' Merkle trees (issue 14, services/common/audit/).
--
-- The checkpoints themselves are witnessed outside the database: each is published to the
-- audit.checkpoints.v1 topic, and `wuguan verify --checkpoints` checks the store against the
-- topic. The rows here are the outbox and the checkpointer's working state; altering them can
-- stop checkpoints (which alerts) but cannot make a rewritten chain pass.

-- One row per service: its last checkpoint (one worker signs at a time: an advisory lock).
CREATE TABLE IF NOT EXISTS audit_checkpoint_heads (
    service    text        PRIMARY KEY,
    seq        bigint      NOT NULL DEFAULT 0,
    digest     text        NOT NULL DEFAULT '',
    decisions  bigint      NOT NULL DEFAULT 0,  -- events in the service's chains at that checkpoint
    signed_at  timestamptz
);

-- Every checkpoint as signed and published, byte for byte.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    service    text        NOT NULL,
    seq        bigint      NOT NULL,
    message    bytea       NOT NULL,
    digest     text        NOT NULL,
    published  boolean     NOT NULL DEFAULT false,
    signed_at  timestamptz NOT NULL,
    PRIMARY KEY (service, seq)
);
CREATE INDEX IF NOT EXISTS audit_checkpoints_unpublished ON audit_checkpoints (service, seq) WHERE NOT published;

-- Each chain's tree as of the last checkpoint that named it: its frontier (RFC 9162), so the
-- next checkpoint reads only the events added since.
CREATE TABLE IF NOT EXISTS audit_chain_trees (
    chain_id   text        PRIMARY KEY,
    service    text        NOT NULL,
    tree_size  bigint      NOT NULL,
    root       bytea       NOT NULL,
    head_hash  bytea       NOT NULL,
    frontier   bytea[]     NOT NULL,
    signed_seq bigint      NOT NULL   -- the checkpoint that signed this tree, checked at start
);

GRANT SELECT, INSERT, UPDATE ON audit_checkpoint_heads, audit_checkpoints, audit_chain_trees TO wuguan_service;
