"""Publishes prepared (topic, key, value) messages and waits for every acknowledgement."""
from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer


async def publish(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for topic, key, value in messages]
        for future in futures:
            await future
        return len(futures)
    finally:
        await producer.stop()
