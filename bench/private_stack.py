"""A broker and a database of a stage's own, for (i) and (j).

Worker topics have fixed names, and a worker's consumer group resumes where it stopped: on the
bench's broker, (i)'s dunning worker would first read every bill and guard decision (b) left, and
(j) needs topics of 4 partitions whatever BENCH_PARTITIONS is. So each of these stages runs on an
embedded broker started for it (its topics empty, with the partitions it asks for) and a freshly
migrated database on the bench's Postgres. While the block runs, the bench's broker, database,
producer and partition count are swapped for these, so the bench's own helpers (start_worker,
publish_all, wait_processed, wait_relayed) work on them unchanged; they are restored after.
"""
from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from services.common.localstack.embedded import start_broker
from services.common.localstack.topics import create_topics

from .producer import new_producer


SWAPPED = ("bootstrap", "database_url", "partitions", "producer", "db")


@contextlib.asynccontextmanager
async def private_stack(bench, name: str, partitions: int):
    """`async with private_stack(bench, "i", 6):` the bench, pointed at a stack of the stage's own."""
    saved = {attr: getattr(bench, attr) for attr in SWAPPED}
    before = set(bench.workers)
    broker = await asyncio.to_thread(start_broker, None, bench.tmp / f"broker-{name}.log")
    producer = db = None
    try:
        database_url = await bench.migrated_database(f"wuguan_{name}")
        await create_topics(broker.bootstrap, partitions)
        producer = new_producer(broker.bootstrap)
        await producer.start()
        db = await asyncpg.connect(database_url)
        bench.bootstrap, bench.database_url, bench.partitions = broker.bootstrap, database_url, partitions
        bench.producer, bench.db = producer, db
        yield database_url
    finally:
        for worker in [w for w in bench.workers if w not in before]:
            bench.stop_worker(worker)
        for attr, value in saved.items():
            setattr(bench, attr, value)
        if producer is not None:
            await producer.stop()
        if db is not None:
            await db.close()
        broker.stop()
