"""One service's runtime in the test process (BatchProcessor, dead letters, timers) wired
to the real broker and a real Postgres: what a worker does, minus faust."""
from __future__ import annotations

import orjson
from aiokafka import AIOKafkaProducer

from schemas.registry import DECISION_TOPICS, INPUT_TOPICS, REPARTITION_TOPICS, partition_key

from services.common.config import Settings
from services.common.db import connect, create_pool
from services.common.eventstore.migrate import migrate
from services.common.localstack.topics import create_topics
from services.common.runtime.dead_letter_relay import DeadLetterRelay
from services.common.runtime.dead_letters import DeadLetters, InputMessage
from services.common.runtime.relay import Relay
from services.common.runtime.timers import TimerPublisher, timer_topic
from services.common.runtime.batch_processor import BatchProcessor

from ..kafka_helpers import read_topic


class RuntimeHarness:
    def __init__(self, bootstrap: str, database_url: str, definition, timer_clock: str = "wall"):
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.definition = definition
        self.service = definition.decider.service
        self.timer_clock = timer_clock
        self.offset = 0
        self.read_back: dict[int, int] = {}  # repartition topic partition -> next offset to read back

    async def __aenter__(self):
        conn = await connect(self.database_url)
        await migrate(conn)
        await conn.close()
        await create_topics(self.bootstrap, 3)
        self.pool = await create_pool(self.database_url, role="wuguan_service")
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False)
        await self.producer.start()
        self.dead_letter_relay = DeadLetterRelay(service=self.service, pool=self.pool, producer=self.producer,
                                                 interval_s=0.1)
        self.processor = BatchProcessor(
            decider=self.definition.decider, policy=self.definition.load_policy(Settings()), pool=self.pool,
            dead_letters=DeadLetters(self.service), service_version="test",
        )
        route = REPARTITION_TOPICS.get(self.service)
        if route is not None:  # the broker is shared: what other tests' relays sent back is theirs
            for r in await read_topic(self.bootstrap, route.topic):
                self.read_back[r.partition] = max(self.read_back.get(r.partition, 0), r.offset + 1)
        self.timers = TimerPublisher(service=self.service, pool=self.pool, producer=self.producer, interval_s=0.1,
                                     clock=self.timer_clock)
        return self

    async def __aexit__(self, *exc):
        await self.producer.stop()
        await self.pool.close()

    def message(self, topic: str, value: bytes, key: bytes | None = None, partition: int = 0) -> InputMessage:
        """The next offset of a partition (0 unless said), keyed as a producer keeps the contract (CONTRACT.KEY)."""
        self.offset += 1
        return InputMessage(topic=topic, partition=partition, offset=self.offset, key=key or contract_key(topic, value),
                            value=value)

    async def feed(self, *events: tuple[str, bytes]) -> None:
        """Decide the events in one batch and send the dead letters it stored, as a worker does."""
        await self.process([self.message(topic, value) for topic, value in events])

    async def process(self, messages: list[InputMessage], processor: BatchProcessor | None = None) -> None:
        fenced = await (processor or self.processor).process(messages)
        assert not fenced, "a processor was fenced out of a partition it was given"
        await self.dead_letter_relay.deliver_due()

    async def fire_due_timers(self) -> int:
        """Publish due timers to the broker and decide what comes back from it."""
        published = await self.timers.publish_due()
        if published:
            records = await read_topic(self.bootstrap, timer_topic(self.service))
            await self.processor.process([InputMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
            await self.dead_letter_relay.deliver_due()
        return published

    async def relay(self) -> int:
        """Publish the stored decisions as the worker's relay does, and decide those that come
        back on the service's repartition topic (the guard's switch sequences), as a worker
        subscribed to it does. Returns how many decisions came back."""
        route = REPARTITION_TOPICS.get(self.service)
        relay = Relay(service=self.service, topic=DECISION_TOPICS[self.service], database_url=self.database_url,
                      role=None, producer=self.producer, interval_s=0.1, route=route)
        conn = await connect(self.database_url)
        try:
            while await relay.publish_page(conn) == relay.page_size:
                pass
        finally:
            await conn.close()
        if route is None:
            return 0
        records = [r for r in await read_topic(self.bootstrap, route.topic) if r.offset >= self.read_back.get(r.partition, 0)]
        for r in records:
            self.read_back[r.partition] = max(self.read_back.get(r.partition, 0), r.offset + 1)
        if records:
            await self.process([InputMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
        return sum(len(orjson.loads(r.value)) for r in records)  # a message holds a key's decisions of a page

    async def stream(self, stream_id: str) -> list[dict]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT payload FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id)
        return [r["payload"] for r in rows]


def contract_key(topic: str, value: bytes) -> bytes:
    """The partition key a contract-keeping producer sends; any key for what is not an input event."""
    try:
        payload = orjson.loads(value)["payload"]
        return partition_key(topic, payload).encode() if topic in INPUT_TOPICS else b"k"
    except Exception:  # a malformed event: it is refused before its key matters
        return b"k"
