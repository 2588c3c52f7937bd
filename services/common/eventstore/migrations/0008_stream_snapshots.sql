-- The state of a snapshot stream (services/common/eventstore/snapshots.py): a stream whose state
-- changes more often than it decides, such as a switch's sequence, which every CDR moves but
-- which only decides when a gap opens, closes or outlives its grace period. Written in the
-- transaction of the batch that changed it; `version` is the stream's event version it
-- includes, `revision` counts the writes, so a second writer that read an older one is refused.
CREATE TABLE IF NOT EXISTS stream_snapshots (
    service   text    NOT NULL,
    stream_id text    NOT NULL,
    version   integer NOT NULL,
    revision  bigint  NOT NULL,
    state     jsonb   NOT NULL,
    PRIMARY KEY (service, stream_id)
);

GRANT SELECT, INSERT, UPDATE ON stream_snapshots TO wuguan_service;
