"""How long a worker's consumer fetch waits for records: short while records arrive, long once
none have arrived for a while.

faust hard-codes the consumer's fetch_max_wait_ms to 1500. A broker that holds an empty fetch for
the whole wait even when records arrive meanwhile (the embedded Tansu does) adds up to the wait to
each hop, which broke the card-replacement latency goal; so a worker waits little
(WUGUAN_FETCH_MAX_WAIT_MS, 20 ms). But a short wait is a fetch every 20 ms while nothing comes, each
naming every partition of the worker's dozen topics: idle, the three workers and the embedded
broker kept 0.6 of this machine's two cores busy (docs/performance.md, run 18). So once a consumer
has fetched nothing for IDLE_AFTER_S, it waits WUGUAN_FETCH_IDLE_WAIT_MS per fetch, and the first
fetch that brings records makes it wait little again. A real Kafka answers a waiting fetch as soon
as records arrive, so there the long wait costs nothing; on the embedded broker it delays the first
input after a quiet spell by a fraction of it.

Decisions never depend on this: it moves when inputs are read, not what they are.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from faust.transport.drivers import aiokafka as faust_aiokafka

IDLE_AFTER_S = 1.0  # longer than any gap between inputs of a steady flow (a card complaint at 1/s)

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_waits: dict[str, int] = {}


class FetchWait:
    """The wait of a consumer's next fetch, from what its fetches brought (a clock in seconds)."""

    def __init__(self, busy_ms: int, idle_ms: int, clock: Callable[[], float] = time.monotonic):
        self.busy_ms, self.idle_ms, self._clock = busy_ms, idle_ms, clock
        self._records_at = clock()

    def after_fetch(self, brought_records: bool) -> int:
        now = self._clock()
        if brought_records:
            self._records_at = now
        return self.idle_ms if now - self._records_at >= IDLE_AFTER_S else self.busy_ms


def adapt(fetcher, wait: FetchWait) -> None:
    """Let `wait` set the wait of each of the aiokafka fetcher's next fetches: its request is built
    from `_fetch_max_wait_ms` each time, and `_proc_fetch_request` answers whether records came."""
    process = fetcher._proc_fetch_request

    async def process_and_adapt(assignment, node_id, request):
        brought_records = await process(assignment, node_id, request)
        fetcher._fetch_max_wait_ms = wait.after_fetch(brought_records)
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
