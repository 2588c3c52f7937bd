"""A decided batch sealed by its writer and written in five round trips (migration 0014; issue 13).

A batch's transaction took seven to nine round trips, each of which, on a busy machine, waits for
the worker's event loop and for a core: a batch of 40 took 20-50 ms to write at half the maximum
rate where alone it takes ~3, and an input waits for two writes (the batch before its own, then its
own). A worker is the only writer of its partitions' chains, so it seals the batch itself, from
where its own last commit left each chain's head (ChainOwnership.owned_heads) and with positions
taken ahead (store.Positions); then one call checks what the transaction checked and writes the
heads, snapshots, timers and business clocks (write_batch_outcome), and the COPY writes the events:
BEGIN, the call, the COPY, COMMIT.

A batch with anything else to write (dead letters, holds, inputs that decided nothing, claims past
a decision's first), or whose chains this worker has not claimed in the current generation or not
yet appended to, is written statement by statement (BatchProcessor._write), which reads and locks
the heads first; so is a batch whose write here was refused, which that way names the cause.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..eventstore import store
from ..eventstore.records import NewEvent, StoredEvent
from .timers import MAX_CLOCK_LEAD, timer_changes

_WRITE = f"SELECT write_batch_outcome({', '.join(f'${n}' for n in range(1, 27))})"


async def write_sealed(conn, service: str, appends: Sequence[tuple[int, Sequence[NewEvent]]],
                       heads: dict[str, tuple[int, int, bytes]], positions: list[int],
                       read_versions: dict[str, int], snapshots: tuple[list[tuple], dict[str, int]],
                       fired: list[str], clocks: dict[str, datetime]) -> list[StoredEvent]:
    """Write a batch in the caller's transaction, as one call and a COPY; returns its stored events.
    `appends`: (expected version, events) as store.append takes them; `heads`: chain -> (epoch,
    seq, hash) for every chain the events go to (ChainOwnership.owned_heads); `positions`: one per
    event (store.Positions); `read_versions`: the streams read and not written; `snapshots`:
    SnapshotStreams.changes; `fired`: the timers that fired; `clocks`: chain -> the latest business
    time of the batch's inputs from its partition."""
    chains = sorted(heads)
    links = {c: [heads[c][1], heads[c][2]] for c in chains}
    stored = store.seal_appends(appends, iter(positions), links)
    written, read = snapshots
    scheduled, cancelled = timer_changes(stored, fired)
    timers = [list(column) for column in zip(*scheduled)] or [[] for _ in range(7)]
    clock_chains = sorted(clocks)
    await conn.execute(
        _WRITE, service, list(read_versions), list(read_versions.values()),
        chains, [heads[c][0] for c in chains], [heads[c][1] for c in chains], [heads[c][2] for c in chains],
        [links[c][0] for c in chains], [links[c][1] for c in chains],
        [w[0] for w in written], [w[1] for w in written], [w[2] for w in written], [w[3] for w in written],
        list(read), list(read.values()),
        cancelled, *timers,
        clock_chains, [clocks[c] for c in clock_chains], MAX_CLOCK_LEAD)
    if stored:
        await store.copy_events(conn, stored)
    return stored
