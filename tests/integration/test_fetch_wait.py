"""The fetch wait through a real broker (runtime/fetch_wait.py): faust's worker consumer gets a
fetcher whose wait follows what its fetches bring; an idle consumer sends its fetches with the
long wait and still receives the next record, after which it waits little again; and records held
but not yet taken keep the wait short. This leans on aiokafka's Fetcher internals
(`_proc_fetch_request`, `_fetch_max_wait_ms`, `_records`); faust-streaming and aiokafka are pinned."""
from __future__ import annotations

import asyncio
import contextlib
import uuid

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from services.common.runtime.fetch_wait import IDLE_AFTER_S, FetchWait, adapt, set_fetch_waits

from ..kafka_helpers import new_topic
from ..manual_clock import ManualClock

pytestmark = pytest.mark.integration


async def _until(condition, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _clients(bootstrap: str):
    """A consumer that reads from the start and commits nothing, and a producer, both stopped after."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await consumer.start()
    await producer.start()
    try:
        yield consumer, producer
    finally:
        await producer.stop()
        await consumer.stop()


def _waits_sent(fetcher) -> list[int]:
    """The wait of every fetch request the fetcher sends from now on, as it went to the broker."""
    sent, send = [], fetcher._client.send

    async def recording(node_id, request, *args, **kwargs):
        if isinstance(request, FetchRequest):
            sent.append(request._max_wait_ms)
        return await send(node_id, request, *args, **kwargs)

    fetcher._client.send = recording
    return sent


async def test_faust_worker_consumers_fetch_with_the_adapting_wait(kafka_bootstrap, monkeypatch):
    # restored after the test: set_fetch_waits replaces faust's method for the process
    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer",
                        AIOKafkaConsumerThread._create_worker_consumer)
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
    topic = await new_topic(kafka_bootstrap, "test.fetch-wait", 1)
    clock = ManualClock()
    async with _clients(kafka_bootstrap) as (consumer, producer):
        consumer.assign([TopicPartition(topic, 0)])
        fetcher = consumer._fetcher
        adapt(fetcher, FetchWait(20, 250, clock))
        sent = _waits_sent(fetcher)
        assert await consumer.getmany(timeout_ms=200) == {}
        assert fetcher._fetch_max_wait_ms == 20  # no time has passed on the wait's clock
        clock.now += IDLE_AFTER_S
        await _until(lambda: 250 in sent)  # the fetch after the next empty one went out with the long wait
        await producer.send_and_wait(topic, b"after a quiet spell")
        records = await consumer.getmany(timeout_ms=5000)
        assert [r.value for rs in records.values() for r in rs] == [b"after a quiet spell"]
        assert fetcher._fetch_max_wait_ms == 20


async def test_records_held_but_not_taken_keep_the_wait_short(kafka_bootstrap):
    """A worker busy with a long batch takes no records: its other partitions' fetches come back
    empty, but the partition it holds records of is not idle, and must be fetched without delay
    as soon as they are taken."""
    topic = await new_topic(kafka_bootstrap, "test.fetch-wait", 2)
    clock = ManualClock()
    async with _clients(kafka_bootstrap) as (consumer, producer):
        await producer.send_and_wait(topic, b"held", partition=0)
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        fetcher = consumer._fetcher
        adapt(fetcher, FetchWait(20, 250, clock))
        await _until(lambda: bool(fetcher._records))  # fetched, not taken
        clock.now += 5 * IDLE_AFTER_S
        sent = _waits_sent(fetcher)
        await _until(lambda: len(sent) >= 3)  # partition 1's empty fetches go on
        assert set(sent) == {20} and fetcher._fetch_max_wait_ms == 20
        records = await consumer.getmany(timeout_ms=1000)
        assert [r.value for rs in records.values() for r in rs] == [b"held"]
        clock.now += IDLE_AFTER_S  # a second after the records were last held
        await _until(lambda: fetcher._fetch_max_wait_ms == 250)
