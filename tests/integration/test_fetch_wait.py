"""The fetch wait through a real broker (runtime/fetch_wait.py): faust's worker consumer gets a
fetcher whose wait follows what its fetches bring, and an idle consumer that waits long still
receives the next record, after which it waits little again. This leans on aiokafka's Fetcher
internals (`_proc_fetch_request`, `_fetch_max_wait_ms`); faust-streaming and aiokafka are pinned."""
from __future__ import annotations

import asyncio
import uuid

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.runtime.fetch_wait import IDLE_AFTER_S, FetchWait, adapt, set_fetch_waits

pytestmark = pytest.mark.integration


async def _until(condition, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_faust_worker_consumers_fetch_with_the_adapting_wait(kafka_bootstrap):
    set_fetch_waits(20, 250)
    app = faust.App(f"test-fetch-wait-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}",
                    web_enabled=False)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    await consumer.start()
    try:
        fetcher = consumer._fetcher
        assert fetcher._fetch_max_wait_ms == 20
        assert fetcher._proc_fetch_request.__name__ == "process_and_adapt"
    finally:
        await consumer.stop()


async def test_an_idle_consumer_waits_long_and_still_gets_the_next_record_then_waits_little(kafka_bootstrap):
    topic = f"test.fetch-wait.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    now = [0.0]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        fetcher = consumer._fetcher
        adapt(fetcher, FetchWait(20, 250, clock=lambda: now[0]))
        assert await consumer.getmany(timeout_ms=200) == {}
        assert fetcher._fetch_max_wait_ms == 20  # no time has passed on the wait's clock
        now[0] += IDLE_AFTER_S
        await _until(lambda: fetcher._fetch_max_wait_ms == 250)  # the next empty fetch
        await producer.send_and_wait(topic, b"after a quiet spell")
        records = await consumer.getmany(timeout_ms=5000)
        assert [r.value for rs in records.values() for r in rs] == [b"after a quiet spell"]
        assert fetcher._fetch_max_wait_ms == 20
    finally:
        await producer.stop()
        await consumer.stop()
