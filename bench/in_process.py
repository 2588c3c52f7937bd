"""Wuguan's own cost per input, without the broker: (b)'s inputs through the guard's BatchProcessor.

The worker's batch processor, policy and decider on a database of their own, fed (b)'s messages
in batches of the worker's size from memory. No faust, no relay, no broker: what remains is
decoding, deciding, the hash chain and the store's transaction. Set beside (a)'s faust floor
it splits the end-to-end rate into the framework's share and Wuguan's (docs/performance.md).
Run by the bench, in its own process so the measurement has a core of its own:
    python -m bench.in_process DATABASE_URL INPUTS_FILE
"""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import orjson

from services.billing_guard.worker import DEFINITION
from services.common.config import Settings
from services.common.db import create_pool
from services.common.runtime.dead_letters import DeadLetters, InputMessage
from services.common.runtime.batch_processor import BatchProcessor
from services.common.runtime.worker import SERVICE_VERSION

from .decision_counts import decisions_by_type


async def run(database_url: str, inputs_file: Path) -> dict:
    settings = Settings.from_env()
    messages = [InputMessage(topic=topic, partition=i % settings.partitions, offset=i, key=key.encode(),
                             value=value.encode(), timestamp_ms=None, headers=())
                for i, (topic, key, value) in enumerate(orjson.loads(inputs_file.read_bytes()))]
    pool = await create_pool(database_url, role=None, max_size=2)
    try:
        processor = BatchProcessor(decider=DEFINITION.decider, policy=DEFINITION.load_policy(settings), pool=pool,
                                   dead_letters=DeadLetters(DEFINITION.decider.service),
                                   service_version=SERVICE_VERSION)
        setup, timed = messages[:1], messages[1:]  # the tariff in force, as in (b)
        await processor.process(setup)
        started = time.perf_counter()
        for i in range(0, len(timed), settings.batch_size):
            await processor.process(timed[i:i + settings.batch_size])
        seconds = time.perf_counter() - started
        async with pool.acquire() as conn:
            by_type = await decisions_by_type(conn, DEFINITION.decider.service)
    finally:
        await pool.close()
    return {"inputs": len(timed), "seconds": round(seconds, 2), "events_per_s": round(len(timed) / seconds, 1),
            "decisions_stored": sum(by_type.values()), "decisions_by_type": by_type}


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(run(sys.argv[1], Path(sys.argv[2])))).decode(), flush=True)
