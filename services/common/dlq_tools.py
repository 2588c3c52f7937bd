"""`wuguan dlq inspect|replay`: read dead letters, and send fixed-up originals back."""
from __future__ import annotations

import base64

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from .localstack.publish import publish


def _dlq_name(topic: str) -> str:
    return topic if topic.endswith(".dlq") else f"{topic}.dlq"


async def _read(bootstrap: str, topic: str, limit: int) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        letters = []
        while len(letters) < limit and any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                letters.extend(orjson.loads(r.value) for r in records)
        return letters[:limit]
    finally:
        await consumer.stop()


async def inspect_dlq(bootstrap: str, topic: str, limit: int) -> int:
    for letter in await _read(bootstrap, _dlq_name(topic), limit):
        print(
            f"{letter['originalTopic']}[{letter['partition']}]@{letter['offset']} "
            f"{letter['error']['code']}: {letter['error']['message']}"
        )
    return 0


async def replay_dlq(bootstrap: str, topic: str, limit: int) -> int:
    """Send dead-lettered originals back to their topic, e.g. after a policy or code fix."""
    messages, seen = [], set()
    for letter in await _read(bootstrap, _dlq_name(topic), limit):
        # A topic read by two services can hold one letter from each for the same input.
        origin = (letter["originalTopic"], letter["partition"], letter["offset"])
        if origin in seen:
            continue
        seen.add(origin)
        value = letter["value"]
        raw = base64.b64decode(value) if letter.get("valueEncoding") == "base64" else value.encode()
        key = letter["key"].encode() if letter.get("key") is not None else None
        messages.append((letter["originalTopic"], key, raw))
    sent = await publish(bootstrap, messages)
    print(f"replayed {sent} dead letters")
    return 0
