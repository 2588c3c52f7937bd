-- A decided batch's transaction in five round trips, not seven to nine (issue 13; docs/performance.md, run 22).
--
-- A batch was written as BEGIN, the check and lock of the chains' heads with the batch's positions,
-- the COPY (two round trips), the heads' update, the snapshots and their check, the business clock,
-- COMMIT. On a busy two-core machine each round trip also waits for the worker's event loop and for
-- a core: a batch of 40 took 20-50 ms to write at half the maximum rate, where alone it takes ~3,
-- and an input waits for two writes (the batch before its own, then its own).
--
-- A worker that owns a partition's chain is its only writer, so once its own last batch committed
-- it knows where the chain's head is, and it keeps positions taken ahead (runtime/sealed_write.py).
-- It seals the batch before writing it; then this function, the transaction's first statement,
-- checks what the first statement checked (the chains' heads are where the writer left them and
-- under its epoch, else another writer appended or a new owner claimed the chain; the streams and
-- snapshots read did not move) and writes everything but the events: the heads, the snapshots, the
-- timers and the partitions' business clocks. The events follow by COPY, which writes rows in bulk
-- (an INSERT from arrays in this function cost Postgres more than the round trips it saved). A
-- refusal (SQLSTATE 40001 for a check, a unique violation in the COPY) rolls the batch back; the
-- worker then stores it the way it always did, which names the cause.
CREATE OR REPLACE FUNCTION write_batch_outcome(
    service text,
    read_streams text[], read_versions integer[],
    chain_ids text[], chain_epochs bigint[], chain_from_seqs bigint[], chain_from_hashes bytea[],
    chain_to_seqs bigint[], chain_to_hashes bytea[],
    snapshot_streams text[], snapshot_versions integer[], snapshot_revisions bigint[], snapshot_states jsonb[],
    read_snapshot_streams text[], read_snapshot_revisions bigint[],
    cancelled_timers text[], timer_ids text[], timer_streams text[], timer_keys text[],
    timer_due_ats timestamptz[], timer_due_texts text[], timer_kinds text[], timer_data jsonb[],
    clock_chains text[], clock_watermarks timestamptz[], clock_lead interval
) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    matched integer;
BEGIN
    -- The heads, locked in one order (as store.append takes them), where this writer left them.
    SELECT count(*) INTO matched
      FROM (SELECT c.chain_id, c.seq, c.hash, c.epoch FROM event_chains c WHERE c.chain_id = ANY(chain_ids)
             ORDER BY c.chain_id FOR UPDATE) AS h
      JOIN unnest(chain_ids, chain_epochs, chain_from_seqs, chain_from_hashes) AS x(chain_id, epoch, seq, hash)
        ON x.chain_id = h.chain_id AND x.epoch = h.epoch AND x.seq = h.seq AND x.hash = h.hash;
    IF matched <> coalesce(cardinality(chain_ids), 0) THEN
        RAISE EXCEPTION 'a chain moved on or has a new owner' USING ERRCODE = '40001';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(read_streams, read_versions) AS r(stream_id, version)
                WHERE r.version <> coalesce((SELECT max(e.stream_version) FROM events e
                                              WHERE e.stream_id = r.stream_id), 0)) THEN
        RAISE EXCEPTION 'a stream read for the batch moved on' USING ERRCODE = '40001';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(read_snapshot_streams, read_snapshot_revisions) AS r(stream_id, revision)
                WHERE r.revision <> coalesce((SELECT s.revision FROM stream_snapshots s
                                               WHERE s.service = write_batch_outcome.service
                                                 AND s.stream_id = r.stream_id), 0)) THEN
        RAISE EXCEPTION 'a snapshot read for the batch moved on' USING ERRCODE = '40001';
    END IF;

    UPDATE event_chains c SET seq = u.seq, hash = u.hash
      FROM unnest(chain_ids, chain_to_seqs, chain_to_hashes) AS u(chain_id, seq, hash)
     WHERE c.chain_id = u.chain_id;

    -- Each snapshot written is the next revision of the one read (eventstore/snapshots.py).
    WITH stored AS (
        INSERT INTO stream_snapshots AS s (service, stream_id, version, revision, state)
        SELECT write_batch_outcome.service, u.stream_id, u.version, u.revision + 1, u.state
          FROM unnest(snapshot_streams, snapshot_versions, snapshot_revisions, snapshot_states)
               AS u(stream_id, version, revision, state)
        ON CONFLICT (service, stream_id) DO UPDATE
           SET version = EXCLUDED.version, revision = EXCLUDED.revision, state = EXCLUDED.state
         WHERE s.revision = EXCLUDED.revision - 1
        RETURNING 1)
    SELECT count(*) INTO matched FROM stored;
    IF matched <> coalesce(cardinality(snapshot_streams), 0) THEN
        RAISE EXCEPTION 'a snapshot moved on since it was read' USING ERRCODE = '40001';
    END IF;

    -- The timers the batch's decisions set and cancelled (runtime/timers.py).
    DELETE FROM pending_timers WHERE timer_id = ANY(cancelled_timers);
    INSERT INTO pending_timers (timer_id, service, stream_id, partition_key, due_at, due_at_text, kind, data)
    SELECT u.timer_id, write_batch_outcome.service, u.stream_id, u.partition_key, u.due_at, u.due_at_text, u.kind,
           u.data
      FROM unnest(timer_ids, timer_streams, timer_keys, timer_due_ats, timer_due_texts, timer_kinds, timer_data)
           AS u(timer_id, stream_id, partition_key, due_at, due_at_text, kind, data)
    ON CONFLICT (timer_id) DO NOTHING;

    -- The business clock of each of the batch's partitions (runtime/timers.advance_business_clock).
    INSERT INTO business_clock_partitions (service, chain_id, watermark)
    SELECT write_batch_outcome.service, u.chain_id, LEAST(u.watermark, clock_timestamp() + clock_lead)
      FROM unnest(clock_chains, clock_watermarks) AS u(chain_id, watermark)
     ORDER BY u.chain_id
    ON CONFLICT (service, chain_id)
    DO UPDATE SET watermark = GREATEST(business_clock_partitions.watermark, EXCLUDED.watermark);
END
$$;
