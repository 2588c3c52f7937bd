"""The baseline's work through faust: what the worker's framework costs before Wuguan decides anything.

The same consumer as a worker (`faust_settings`, the fetch wait, BatchConsumer delivering each
fetch as a batch and committing its offsets after the batch's transaction), doing exactly what
`bench.baseline` does with each batch: `orjson.loads` each event and COPY the batch into a table. The
difference between this and the bare aiokafka baseline is faust's own cost per message;
the difference between this and the guard worker is Wuguan's.

Run as its own process, like the baseline and the worker:
    python -m bench.faust_floor BOOTSTRAP DATABASE_URL TOPIC EXPECTED
Prints "ready" once its partitions are assigned, then one JSON line when it has stored EXPECTED
rows: {"rows": n, "first_ms": t, "last_ms": t}.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

import asyncpg
import faust
import orjson

from services.common.config import Settings
from services.common.runtime.batch_consumer import deliver_batches
from services.common.runtime.fetch_wait import set_fetch_waits
from services.common.runtime.worker import faust_settings
from services.composition import REGISTRY

from .baseline import COLUMNS, TABLE, prepare, row


def say(line: bytes) -> None:
    # faust's worker redirects sys.stdout into its logger; the bench reads the real stdout.
    os.write(1, line + b"\n")


def build(bootstrap: str, database_url: str, topic: str, expected: int) -> faust.App:
    settings = Settings.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WUGUAN_FAST_GROUP_JOIN": "true"},
                                 web_ports=REGISTRY.web_ports)
    set_fetch_waits(settings.fetch_max_wait_ms, settings.fetch_idle_wait_ms)
    conf = {**faust_settings(settings, "billing_guard"), "web_enabled": False}
    app = faust.App(f"bench-faust-floor-{topic}", **conf)
    channel = app.topic(topic, value_type=bytes, key_type=bytes)
    state = {"stored": 0, "first": None}

    @app.task
    async def announce_ready() -> None:
        while not app.consumer.assignment():
            await asyncio.sleep(0.05)
        say(b"ready")

    @app.agent(channel)
    async def subscribe(stream):  # BatchConsumer delivers every fetch to store() instead
        async for _ in stream:
            pass

    connection: list[asyncpg.Connection] = []

    async def store(messages, generation: int) -> asyncio.Future:
        if not connection:
            connection.append(await asyncpg.connect(database_url))
            await prepare(connection[0])
        rows = [row(m.value, m.topic, m.partition, m.offset) for m in messages]
        state["first"] = state["first"] or time.time()
        async with connection[0].transaction():
            await connection[0].copy_records_to_table(TABLE, records=rows, columns=COLUMNS)
        state["stored"] += len(rows)
        if state["stored"] >= expected:
            say(orjson.dumps({"rows": state["stored"], "first_ms": state["first"] * 1000,
                              "last_ms": time.time() * 1000}))
            # Measured; faust's shutdown (seconds, with a rebalance) is not part of it.
            os._exit(0)
        durable = asyncio.get_running_loop().create_future()  # stored above, before returning
        durable.set_result([])
        return durable

    deliver_batches(app, store, service="bench", max_bytes=settings.batch_max_bytes)
    return app


if __name__ == "__main__":
    bootstrap, database_url, topic, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    application = build(bootstrap, database_url, topic, expected)
    faust.Worker(application, loglevel="warning", quiet=True).execute_from_commandline()
