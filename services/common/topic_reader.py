"""Reads a whole topic, from its first record to the end it had when the read began; and how far
a consumer group is behind on one."""
from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.registry import REPARTITION_TOPICS


async def read_to_end(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic`, partition by partition in offset order; no consumer group, so
    nothing is committed and any number of readers can run at once."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        await consumer.start()  # inside: a broker that refuses the connection still has the consumer closed
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=1000)
            for fetched in batch.values():
                # Whole fetches, not cut at the end offsets read at the start: the embedded broker
                # reports a multi-record batch's end too early, and a record more is harmless.
                records.extend(fetched)
        records.sort(key=lambda r: (r.partition, r.offset))
        return records
    finally:
        await consumer.stop()


async def group_behind(bootstrap: str, group_id: str, topic: str) -> int:
    """How many of `topic`'s records the consumer group has not committed yet (0: it is caught up
    with every record written so far), read without joining the group. The embedded broker may
    report an end inside a multi-record batch; a group commits whole fetches, so a group that
    reached that end has consumed the batch around it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions or None)
        return sum(max(0, end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
                   for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


def consumer_group(service: str) -> str:
    """The consumer group a service's workers form (their faust app id)."""
    return f"wuguan-{service}"


async def repartition_behind(bootstrap: str, service: str) -> int:
    """How many of its own decisions the service's workers have still to read back from its
    repartition topic (0 for a service without one); -1 while the broker cannot tell (busy, the
    group rebalancing). The guard's switch sequences move there mostly without a decision the
    log would show, so whoever waits for a guard to be done waits for this too."""
    route = REPARTITION_TOPICS.get(service)
    if route is None:
        return 0
    try:
        return await group_behind(bootstrap, consumer_group(service), route.topic)
    except Exception:
        return -1
