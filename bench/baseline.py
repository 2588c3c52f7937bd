"""The ceiling of this stack: a bare aiokafka consumer that decodes each event with orjson and
COPYs the batch into a Postgres table with asyncpg, committing offsets after each batch.

Run as its own process (like a worker) so it gets the same CPU as the worker it is compared to:
    python -m bench.baseline BOOTSTRAP DATABASE_URL TOPIC EXPECTED
Prints one JSON line when it has stored EXPECTED rows: {"rows": n, "first_ms": t, "last_ms": t}.
"""
from __future__ import annotations

import asyncio
import sys
import time

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

TABLE = "bench_baseline"
COLUMNS = ("event_id", "topic", "kafka_partition", "kafka_offset", "account_id", "payload")


async def prepare(conn) -> None:
    """The jsonb codec and the table the rows go to (bench.faust_floor does the same work)."""
    await conn.set_type_codec("jsonb", encoder=lambda v: b"\x01" + orjson.dumps(v),
                              decoder=lambda d: orjson.loads(d[1:]), schema="pg_catalog", format="binary")
    await conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (event_id text PRIMARY KEY, topic text, "
                       "kafka_partition int, kafka_offset bigint, account_id text, payload jsonb)")


def row(value: bytes, topic: str, partition: int, offset: int) -> tuple:
    """One event decoded into the table's row."""
    event = orjson.loads(value)
    return (event["eventId"], topic, partition, offset, event["payload"].get("accountId"), event)


async def run(bootstrap: str, database_url: str, topic: str, expected: int, batch: int = 500) -> None:
    conn = await asyncpg.connect(database_url)
    await prepare(conn)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-baseline-{topic}",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
                                session_timeout_ms=6000, heartbeat_interval_ms=1000)
    await consumer.start()
    while not consumer.assignment():  # joined the group: the clock starts only after this
        await consumer.getmany(timeout_ms=100)
    print("ready", flush=True)
    stored, first = 0, None
    try:
        while stored < expected:
            records = await consumer.getmany(timeout_ms=50, max_records=batch)
            rows = [row(r.value, r.topic, r.partition, r.offset) for tp_records in records.values() for r in tp_records]
            if not rows:
                continue
            first = first or time.time()
            async with conn.transaction():
                await conn.copy_records_to_table(TABLE, records=rows, columns=COLUMNS)
            await consumer.commit()
            stored += len(rows)
        print(orjson.dumps({"rows": stored, "first_ms": first * 1000, "last_ms": time.time() * 1000}).decode(),
              flush=True)
    finally:
        await consumer.stop()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
