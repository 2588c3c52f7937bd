"""One service's runtime in the test process (BatchProcessor, dead letters, timers) wired
to the real broker and a real Postgres: what a worker does, minus faust."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.common.config import Settings
from services.common.db import connect, create_pool
from services.common.eventstore.migrate import migrate
from services.common.localstack.topics import create_topics
from services.common.runtime.dead_letters import DeadLetters, InputMessage
from services.common.runtime.timers import TimerPublisher, timer_topic
from services.common.runtime.unit_of_work import BatchProcessor

from ..kafka_helpers import read_topic


class RuntimeHarness:
    def __init__(self, bootstrap: str, database_url: str, definition, timer_clock: str = "wall"):
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.definition = definition
        self.service = definition.decider.service
        self.timer_clock = timer_clock
        self.offset = 0

    async def __aenter__(self):
        conn = await connect(self.database_url)
        await migrate(conn)
        await conn.close()
        await create_topics(self.bootstrap, 3)
        self.pool = await create_pool(self.database_url, role="wuguan_service")
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False)
        await self.producer.start()
        self.processor = BatchProcessor(
            decider=self.definition.decider, policy=self.definition.load_policy(Settings()), pool=self.pool,
            dead_letters=DeadLetters(self.producer, self.service, self.pool), service_version="test",
        )
        self.timers = TimerPublisher(service=self.service, pool=self.pool, producer=self.producer, interval_s=0.1,
                                     clock=self.timer_clock)
        return self

    async def __aexit__(self, *exc):
        await self.producer.stop()
        await self.pool.close()

    def message(self, topic: str, value: bytes, key: bytes = b"k") -> InputMessage:
        self.offset += 1
        return InputMessage(topic=topic, partition=0, offset=self.offset, key=key, value=value)

    async def feed(self, *events: tuple[str, bytes]) -> None:
        await self.processor.process([self.message(topic, value) for topic, value in events])

    async def fire_due_timers(self) -> int:
        """Publish due timers to the broker and decide what comes back from it."""
        published = await self.timers.publish_due()
        if published:
            records = await read_topic(self.bootstrap, timer_topic(self.service))
            await self.processor.process([InputMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
        return published

    async def stream(self, stream_id: str) -> list[dict]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT payload FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id)
        return [r["payload"] for r in rows]
