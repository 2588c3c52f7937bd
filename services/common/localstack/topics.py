"""Creates every topic Wuguan reads or writes, with the configured partition count."""
from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.registry import DECISION_TOPICS, INPUT_TOPICS, dlq_topic

from ..audit.checkpoints import TOPIC as CHECKPOINT_TOPIC
from ..config import SERVICES
from ..runtime.timers import timer_topic


def all_topics() -> list[str]:
    topics = []
    for topic in INPUT_TOPICS:
        topics += [topic, dlq_topic(topic)]
    topics += list(DECISION_TOPICS.values())
    topics += [timer_topic(service) for service in SERVICES]
    topics.append(CHECKPOINT_TOPIC)
    return topics


async def create_topics(bootstrap: str, partitions: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in all_topics() if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return missing
    finally:
        await admin.close()
