"""Topics of a test's own, and reading topics to the end, for assertions against the real broker."""
from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def new_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A topic no other test uses (the session's broker is shared): `<prefix>.<random>`."""
    name = f"{prefix}.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list:
    """Every record currently in the topic, all partitions, in partition/offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"topic {topic} does not exist")
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out reading {topic}")
            batch = await consumer.getmany(timeout_ms=500)
            for tp_records in batch.values():
                records.extend(tp_records)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
