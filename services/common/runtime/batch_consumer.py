"""faust's Kafka consumer, delivering each fetch as one batch and committing offsets after it is durable.

faust hands an agent one message at a time: two tasks and an `asyncio.wait` per message
(`Consumer._drain_messages`), which capped a worker at about a quarter of a bare aiokafka
consumer (docs/performance.md, run 10). This consumer keeps everything else of faust (the
consumer thread, group membership, rebalancing, flow control, the web server) and replaces only
that loop: what one fetch returned goes to the worker's batch handler at once. The handler
returns once the batch is decided (batch_pipeline.py: the batch before it is being written
meanwhile), with a future that completes when the batch's decisions and dead letters are
durable; only then are its offsets committed (CONTRACT.NOTHING_LOST), in delivery order. A crash
at any point redelivers what was not committed; the store's input dedup makes the second delivery
change nothing.

The worker registers it with `broker_consumer=["wuguan://host:port"]`; it leans on faust
internals, so faust-streaming is pinned in pyproject.toml. tests/unit/test_batch_consumer.py covers
its pure parts; every end-to-end test (test_platform_e2e, test_rebalance_mid_run,
test_chaos_kill_restart, test_no_input_lost) runs the path through faust.
"""
from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import deque
from time import monotonic
from typing import Awaitable, Callable, Iterable, Iterator, Mapping

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from . import metrics
from .dead_letters import InputMessage

log = logging.getLogger(__name__)

# (the batch, the consumer group's generation) -> once the batch is decided, a future of the inputs
# not stored because their partition has another owner now (their offsets are not committed),
# which completes when the rest is durable.
BatchHandler = Callable[[list[InputMessage], int], Awaitable[asyncio.Future]]
# How long a revocation waits for the batch in flight to become durable, so that its offsets are
# committed before its partitions move. Past it the rebalance goes on: the new owner redelivers
# and the store's dedup keeps the effect once.
REVOKE_WAIT_S = 10.0


def input_message(tp: TP, record) -> InputMessage:
    return InputMessage(
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        timestamp_ms=record.timestamp or None,
        headers=tuple(record.headers or ()),
    )


def merged(records: Mapping[TP, list]) -> Iterator[InputMessage]:
    """One fetch's records, each partition's in offset order, partitions merged by the producer's
    timestamp: the order upstream published in, whatever order the broker answered the fetch in."""
    streams = ([(r.timestamp or 0, i, n, tp, r) for n, r in enumerate(rs)] for i, (tp, rs) in enumerate(records.items()))
    for _, _, _, tp, record in heapq.merge(*streams):
        yield input_message(tp, record)


def bounded(messages: Iterable[InputMessage], max_count: int, max_bytes: int) -> Iterator[list[InputMessage]]:
    """Batches of at most max_count messages and (but for a single larger message) max_bytes of values."""
    batch: list[InputMessage] = []
    size = 0
    for message in messages:
        length = len(message.value or b"")
        if batch and (len(batch) >= max_count or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += length
    if batch:
        yield batch


def next_offsets(batch: list[InputMessage], not_stored: Iterable[InputMessage] = ()) -> dict[TP, int]:
    """The offsets to commit once `batch` is durable: one past the last of each partition, but
    none for a partition with inputs `not_stored`."""
    skip = {TP(m.topic, m.partition) for m in not_stored}
    offsets: dict[TP, int] = {}
    for message in batch:
        tp = TP(message.topic, message.partition)
        if tp not in skip:
            offsets[tp] = max(offsets.get(tp, 0), message.offset + 1)
    return offsets


def deliver_batches(app, handler: BatchHandler, *, service: str, max_bytes: int) -> None:
    """Make `handler` the receiver of every fetch of `app`'s consumer (with faust_settings' broker_consumer)."""
    app.batch_handler = handler
    app.batch_service = service
    app.batch_max_bytes = max_bytes


class BatchConsumer(faust_aiokafka.Consumer):
    """Hands each fetch to `app.batch_handler` and commits its offsets when it is durable."""

    _in_flight: asyncio.Lock | None = None
    _durable: deque | None = None  # (batch, future of its inputs not stored), in delivery order
    _to_rewind: dict[TP, int] | None = None  # partition -> the first offset not stored, to fetch again
    _committer: asyncio.Task | None = None
    _to_commit: dict[TP, int] | None = None
    _last_commit: float = 0.0

    def _flight(self) -> asyncio.Lock:
        if self._in_flight is None:
            self._in_flight = asyncio.Lock()
        return self._in_flight

    async def _drain_messages(self, fetcher) -> None:  # replaces faust's per-message loop
        handler: BatchHandler = self.app.batch_handler
        conf = self.app.conf
        max_bytes = self.app.batch_max_bytes
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            await self._rewind()
            records, _ = await self._wait_next_records(timeout=1.0)
            if not records or self.should_stop:
                continue
            # Records of a partition a rebalance took away meanwhile are its new owner's, who reads
            # them from the committed offset. The rest are kept: dropping them would lose them, as the
            # fetch position has moved past them.
            assigned, generation = self.assignment(), self.app.consumer_generation_id
            records = {tp: rs for tp, rs in records.items() if tp in assigned}
            for batch in bounded(merged(records), conf.broker_max_poll_records, max_bytes):
                async with self._flight():
                    durable = await handler(batch, generation)
                    self._writing().append((batch, durable))
                    durable.add_done_callback(self._acknowledge)

    def _writing(self) -> deque:
        if self._durable is None:
            self._durable = deque()
        return self._durable

    def _acknowledge(self, _=None) -> None:
        """Commit the offsets of the batches durable by now, from the oldest on: a batch's offsets
        never move before those of a batch delivered earlier. A write that did not end (the worker
        stopping) stops it: a later batch's offsets would take the unwritten batch's along."""
        writing = self._writing()
        while writing and writing[0][1].done():
            batch, durable = writing.popleft()
            if durable.cancelled() or durable.exception() is not None:
                writing.clear()
                return
            not_stored = durable.result()
            self._commit_later(next_offsets(batch, not_stored))
            rewind = self._to_rewind = self._to_rewind or {}
            for message in not_stored:
                tp = TP(message.topic, message.partition)
                rewind[tp] = min(rewind.get(tp, message.offset), message.offset)

    def _commit_later(self, offsets: dict[TP, int]) -> None:
        """Commit the offsets of a durable batch in the background, so the next fetch does not wait
        for the broker's answer. One commit at a time, in order: offsets of batches made durable
        meanwhile are merged into the next one (see _commit_pending for how often)."""
        now = monotonic()
        pending = self._to_commit = self._to_commit or {}
        for tp, offset in offsets.items():
            self._read_offset[tp] = offset - 1
            self.app.monitor.stream_inbound_time[tp] = now
            pending[tp] = max(pending.get(tp, 0), offset)
        if pending and (self._committer is None or self._committer.done()):
            self._committer = asyncio.ensure_future(self._commit_pending())

    async def _commit_pending(self) -> None:
        """At most one commit per `broker_commit_interval`: each one is a round trip on the consumer
        thread that the next fetch queues behind, and how often offsets move changes only how much
        a crash redelivers (and the store skips), never what is decided."""
        while self._to_commit:
            wait = self._last_commit + self.app.conf.broker_commit_interval - monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            offsets, self._to_commit = self._to_commit, {}
            await self._commit_durable(offsets)
            self._last_commit = monotonic()

    async def _commit_durable(self, offsets: dict[TP, int]) -> None:
        """Commit offsets of inputs that are durable. A failed commit loses nothing: the inputs are
        delivered again and the store's dedup skips them; so it is counted and not retried."""
        try:
            committed = await self._thread.call_thread(_commit_on_thread, self._thread, offsets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("offset commit failed (%s); the batch is durable and will be redelivered and skipped",
                        type(exc).__name__)
            metrics.OFFSET_COMMIT_FAILURES.labels(self.app.batch_service).inc()
            return
        self._committed_offset.update(committed)

    async def _rewind(self) -> None:
        """Fetch again, from the first, what was not stored, should the partition still be ours (a
        rebalance that takes it away seeks its new owner to the committed offset anyway). Done
        here, between fetches, in one place: seeks made as each batch became durable could land
        in any order, a later one forward of an earlier one."""
        first, self._to_rewind = self._to_rewind, None
        assigned = self.assignment() if first else ()
        for tp, offset in (first or {}).items():
            if tp in assigned:
                await self.seek(tp, offset)

    async def wait_empty(self) -> None:
        """Before partitions are revoked or the worker stops: let the batch in flight become durable
        (within REVOKE_WAIT_S) and, when stopping, its offsets committed. During a rebalance the
        consumer thread is busy with it and commits wait: they are left, and redelivery is skipped."""
        lock, deadline = self._flight(), monotonic() + REVOKE_WAIT_S
        try:
            await asyncio.wait_for(lock.acquire(), REVOKE_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("a batch is still being stored after %.0f s; rebalancing without it", REVOKE_WAIT_S)
            return
        try:
            pending = [durable for _, durable in self._writing()]
            if pending:
                _, late = await asyncio.wait(pending, timeout=max(0.0, deadline - monotonic()))
                if late:
                    log.warning("a batch is still being stored after %.0f s; rebalancing without it", REVOKE_WAIT_S)
                    return
            self._acknowledge()
        finally:
            lock.release()
        if self._committer is not None and not self.app.rebalancing:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._committer), REVOKE_WAIT_S)


async def _commit_on_thread(thread, offsets: dict[TP, int]) -> dict[TP, int]:
    """Runs on faust's consumer thread, which owns the aiokafka consumer. Partitions no longer
    assigned are left to their new owner."""
    assigned = thread.assignment()
    mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if mine:
        await thread._ensure_consumer().commit(
            {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "") for tp, offset in mine.items()})
        thread.tp_last_committed_at.update({tp: monotonic() for tp in mine})
    return mine


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


SCHEME = "wuguan"
drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:BatchTransport"
