"""Wuguan's own cost per input, without the broker: (b)'s inputs through the guard's BatchProcessor.

The worker's batch processor, policy and decider on a database of their own, fed (b)'s messages
in batches of the worker's size from memory. No faust, no relay, no broker: what remains is
decoding, deciding, the hash chain and the store's transaction. The guard's charges come back keyed
by switch (schemas.registry.Repartition) as the relay would send them, read from the store after
each batch and decided as a batch of their own: that is part of the guard's work per CDR. Set beside (a)'s faust floor
it splits the end-to-end rate into the framework's share and Wuguan's (docs/performance.md).
While it runs, bench.phase_timer times the processor's steps (µs per input by phase; BENCH_PHASES=0
turns it off). Then, with the timed run over, a run of CDRs only (ROWS_FILE, when given) measures
the rows and index entries each CDR writes, from Postgres's statistics (bench.row_counts).
Run by the bench, in its own process so the measurement has a core of its own:
    python -m bench.in_process DATABASE_URL INPUTS_FILE [ROWS_FILE]
The collector is set as the worker sets it (runtime/gc_tuning.py; WUGUAN_GC_YOUNG_THRESHOLD=0 keeps CPython's).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import zlib
from pathlib import Path

import orjson

from schemas.registry import REPARTITION_TOPICS
from services.billing_guard.worker import DEFINITION
from services.common.config import Settings
from services.common.db import create_pool
from services.common.runtime.dead_letters import DeadLetters, InputMessage
from services.common.runtime.batch_processor import BatchProcessor
from services.common.runtime.gc_tuning import tune_collector
from services.common.runtime.relay import note_sql, routed_messages
from services.common.runtime.worker import SERVICE_VERSION

from . import row_counts
from .decision_counts import decisions_by_type
from .phase_timer import PhaseTimer


def _messages(path: Path, partitions: int, first_offset: int = 0) -> list[InputMessage]:
    return [InputMessage(topic=topic, partition=i % partitions, offset=first_offset + i, key=key.encode(),
                         value=value.encode(), timestamp_ms=None, headers=())
            for i, (topic, key, value) in enumerate(orjson.loads(path.read_bytes()))]


ROUTE = REPARTITION_TOPICS[DEFINITION.decider.service]


class RouteBack:
    """What the relay sends back on the repartition topic: the routed decisions stored since the
    last call, in log order, grouped by key as the relay groups them and partitioned as the
    producer would."""

    def __init__(self, partitions: int):
        self.partitions, self.after, self.offset = partitions, 0, 0

    async def messages(self, conn) -> list[InputMessage]:
        rows = await conn.fetch(
            f"SELECT global_position, {note_sql(ROUTE)} AS body, payload->'payload'->>$3 AS key FROM events"
            " WHERE global_position > $1 AND event_type = ANY($2::text[]) ORDER BY global_position",
            self.after, list(ROUTE.decision_types), ROUTE.key_field)
        if not rows:
            return []
        self.after = rows[-1]["global_position"]
        out = []
        for key, value in routed_messages([(r["key"], r["body"]) for r in rows]):
            self.offset += 1
            out.append(InputMessage(topic=ROUTE.topic, partition=zlib.crc32(key) % self.partitions, offset=self.offset,
                                    key=key, value=value, timestamp_ms=None, headers=()))
        return out


async def _in_batches(processor: BatchProcessor, messages: list[InputMessage], size: int, route: RouteBack) -> None:
    for i in range(0, len(messages), size):
        await processor.process(messages[i:i + size])
        async with processor.pool.acquire() as conn:
            notes = await route.messages(conn)
        for j in range(0, len(notes), size):
            await processor.process(notes[j:j + size])


async def rows_per_cdr(processor: BatchProcessor, database_url: str, cdrs: list[InputMessage], size: int,
                       route: RouteBack) -> dict:
    """The CDRs through the processor between two settled readings of the tables' statistics;
    the processor's pool is closed before each reading so that its backends report theirs."""
    await processor.pool.close()
    before = await row_counts.settled_reading(database_url)
    processor.pool = await create_pool(database_url, role=None, max_size=2, session_state=False)
    await _in_batches(processor, cdrs, size, route)
    await processor.pool.close()
    after = await row_counts.settled_reading(database_url)
    return row_counts.per_cdr(before, after, len(cdrs))


async def run(database_url: str, inputs_file: Path, rows_file: Path | None = None) -> dict:
    settings = Settings.from_env()
    messages = _messages(inputs_file, settings.partitions)
    # As the worker's pool (runtime/worker.py): released without asyncpg's reset query.
    pool = await create_pool(database_url, role=None, max_size=2, session_state=False)
    processor = BatchProcessor(decider=DEFINITION.decider, policy=DEFINITION.load_policy(settings), pool=pool,
                               dead_letters=DeadLetters(DEFINITION.decider.service),
                               service_version=SERVICE_VERSION)
    timing = os.environ.get("BENCH_PHASES", "1") not in ("0", "")
    tune_collector(settings.gc_young_threshold)  # as the worker sets it
    route = RouteBack(settings.partitions)
    try:
        setup, timed = messages[:1], messages[1:]  # the tariff in force, as in (b)
        await processor.process(setup)
        with PhaseTimer() if timing else contextlib.nullcontext() as phases:
            started = time.perf_counter()
            await _in_batches(processor, timed, settings.batch_size, route)
            seconds = time.perf_counter() - started
        async with processor.pool.acquire() as conn:
            by_type = await decisions_by_type(conn, DEFINITION.decider.service)
        report = {"inputs": len(timed), "seconds": round(seconds, 2), "events_per_s": round(len(timed) / seconds, 1),
                  "decisions_stored": sum(by_type.values()), "decisions_by_type": by_type,
                  "phases": phases.report(len(timed), seconds) if phases else None}
        if rows_file is not None:
            cdrs = _messages(rows_file, settings.partitions, len(messages))
            report["rows_per_cdr"] = await rows_per_cdr(processor, database_url, cdrs, settings.batch_size, route)
    finally:
        await processor.pool.close()
    return report


if __name__ == "__main__":
    rows = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    print(orjson.dumps(asyncio.run(run(sys.argv[1], Path(sys.argv[2]), rows))).decode(), flush=True)
