"""The embedded broker's cost of a fetch, by how long the partition's log is.

The same trickle (500 records a second produced, one consumer fetching them as they come, 20 ms
fetch wait, as a worker's) on a topic with a short log and on one whose partitions already hold
50k records each: the broker's cores busy for each, alternated. The second costs Tansu (memory
storage) several times the first: a fetch that finds records lists every batch stored for the
partition (tansu-storage's dynostore `fetch`, read in its source for 0.6), so its cost grows with
the batches produced to the partition, not with the records asked for; Kafka finds an offset by its
index. So on the embedded broker every stage that reads a topic as it grows pays more per record as
it goes: (b)'s 50k CDRs and (c)'s 30 s of them fill each of six partitions to ~8–9k records, and
(c)'s paced producer writes a batch for every one or two (docs/performance.md, runs 20 and 21).
    python -m bench.broker_growth
"""
from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.localstack.embedded import start_broker

from .statistics import pid_cpu_seconds

PARTITIONS = 6
LONG_LOG = 50_000  # records per partition of the long topic; (b)'s 50k CDRs fill each of six to ~8.5k
RATE = 500
SECONDS = 8


async def _trickle(bootstrap: str, producer: AIOKafkaProducer, topic: str, pid: int) -> float:
    """The broker's cores busy while `topic` gets RATE records a second and a consumer fetches them."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, fetch_max_wait_ms=20, auto_offset_reset="latest")
    await consumer.start()

    async def consume() -> None:
        while True:
            await consumer.getmany(timeout_ms=100)

    async def produce() -> None:
        n = 0
        while True:
            await producer.send(topic, key=str(n).encode(), value=b"x" * 1200)
            n += 1
            await asyncio.sleep(1 / RATE)

    tasks = [asyncio.create_task(consume()), asyncio.create_task(produce())]
    try:
        await asyncio.sleep(2)
        before, started = pid_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(SECONDS)
        return (pid_cpu_seconds(pid) - before) / (time.monotonic() - started)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await consumer.stop()


async def main() -> dict:
    broker = start_broker()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in ("short", "long")])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            sent = [await producer.send("long", key=str(i).encode(), value=b"y" * 1200)
                    for i in range(LONG_LOG * PARTITIONS)]
            await asyncio.gather(*sent)
            cores: dict[str, list[float]] = {"short": [], "long": []}
            for topic in ("short", "long", "short", "long"):
                cores[topic].append(round(await _trickle(broker.bootstrap, producer, topic, broker.process.pid), 3))
        finally:
            await producer.stop()
    finally:
        broker.stop()
    return {"rate_per_s": RATE, "records_per_partition_of_long": LONG_LOG, "broker_cores": cores}


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(main())).decode())
