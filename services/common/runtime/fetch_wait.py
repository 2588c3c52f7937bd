"""How long a worker's consumer fetch waits for records: short while records come, longer once
none have come for a while.

faust hard-codes the consumer's fetch_max_wait_ms to 1500. A broker that holds an empty fetch while
records arrive (the embedded Tansu does, for up to about half the wait: docs/performance.md, run 18)
adds that to each hop, which broke the card-replacement latency goal; so a worker waits little
(WUGUAN_FETCH_MAX_WAIT_MS, 20 ms). But a short wait is a fetch every 20 ms while nothing comes, each
naming every partition of the worker's dozen topics: idle, the three workers and the embedded
broker kept 0.6 of this machine's two cores busy (run 18). So once a consumer has neither fetched
records nor held any not yet taken for IDLE_AFTER_S, it waits WUGUAN_FETCH_IDLE_WAIT_MS per fetch,
and the first fetch that brings records makes it wait little again. Records held but not yet taken
count as activity: aiokafka fetches only the partitions without any, so while a worker is busy
with a long batch its other partitions' fetches come back empty, and a long wait then would hold
up the fetch of the partitions it has just taken (one fetch per broker at a time). A real Kafka
answers a waiting fetch as soon as records arrive for it; the embedded broker delays the first
input after a quiet spell by up to about half the idle wait.

Decisions never depend on this: it moves when inputs are read, not what they are.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from faust.transport.drivers import aiokafka as faust_aiokafka

# A second without records: a steady flow (the bench's complaints at 20/s, a worker's own
# repartitioned notes) never waits long; a first input after a quiet second may.
IDLE_AFTER_S = 1.0

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_waits: dict[str, int] = {}


class FetchWait:
    """The wait of a consumer's next fetch, from when it last had records (a clock in seconds)."""

    def __init__(self, busy_ms: int, idle_ms: int, clock: Callable[[], float] = time.monotonic):
        self.busy_ms, self.idle_ms, self._clock = busy_ms, idle_ms, clock
        self._records_at = clock()

    def after_fetch(self, has_records: bool) -> int:
        """`has_records`: the fetch brought records, or some are still held, not yet taken."""
        now = self._clock()
        if has_records:
            self._records_at = now
        return self.idle_ms if now - self._records_at >= IDLE_AFTER_S else self.busy_ms


def adapt(fetcher, wait: FetchWait) -> None:
    """Let `wait` set the wait of each of the aiokafka fetcher's next fetches: its request is built
    from `_fetch_max_wait_ms` each time, `_proc_fetch_request` answers whether records came, and
    `_records` holds those not yet taken (aiokafka is pinned: pyproject.toml)."""
    process = fetcher._proc_fetch_request

    async def process_and_adapt(assignment, node_id, request):
        brought_records = await process(assignment, node_id, request)
        fetcher._fetch_max_wait_ms = wait.after_fetch(brought_records or bool(fetcher._records))
        return brought_records

    fetcher._fetch_max_wait_ms = wait.busy_ms
    fetcher._proc_fetch_request = process_and_adapt


def _create_worker_consumer(self, transport):
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _waits["busy_ms"]
    start = consumer.start

    async def start_and_adapt():
        await start()  # creates the fetcher
        adapt(consumer._fetcher, FetchWait(_waits["busy_ms"], _waits["idle_ms"]))

    consumer.start = start_and_adapt
    return consumer


def set_fetch_waits(busy_ms: int, idle_ms: int) -> None:
    """The waits of the consumers faust creates from now on in this process."""
    _waits.update(busy_ms=busy_ms, idle_ms=max(busy_ms, idle_ms))
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
