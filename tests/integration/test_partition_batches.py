"""The relay's batches per partition (runtime/partition_batches.py) through a real broker: every
message lands where aiokafka's send() would put it, with its headers, each partition in the order
given, a full batch followed by the next, and a message larger than a batch in a batch of its own."""
from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from services.common.runtime.partition_batches import send_keyed

from ..kafka_helpers import new_topic

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def _read(bootstrap: str, topic: str, count: int) -> dict[int, list]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        got: dict[int, list] = {p: [] for p in range(PARTITIONS)}
        while sum(map(len, got.values())) < count:
            for tp, records in (await consumer.getmany(timeout_ms=2000)).items():
                got[tp.partition] += [(r.key, r.value, list(r.headers)) for r in records]
        return got
    finally:
        await consumer.stop()


async def test_each_message_goes_where_send_puts_it_in_order_with_its_headers(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap, "test.batches", PARTITIONS)
    # Batches of 2 KiB: the messages fill several per partition, and one is larger than a batch.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_batch_size=2048, enable_idempotence=False)
    await producer.start()
    try:
        keys = [f"guard-account-A-{i % 7}".encode() for i in range(60)]
        messages = [(key, f'{{"n":{i},"pad":"{"x" * 100}"}}'.encode(), [("n", str(i).encode())])
                    for i, key in enumerate(keys)]
        messages.insert(30, (keys[3], b'"' + b"y" * 5000 + b'"', [("n", b"big")]))
        for future in await send_keyed(producer, topic, messages):
            await future
    finally:
        await producer.stop()
    got = await _read(kafka_bootstrap, topic, len(messages))
    partitions = list(range(PARTITIONS))
    for partition, records in got.items():
        assert records == [(k, v, [(name, value) for name, value in h]) for k, v, h in messages
                           if DefaultPartitioner()(k, partitions, partitions) == partition]
    assert sum(map(len, got.values())) == len(messages)
