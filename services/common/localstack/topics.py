"""Creates every topic Wuguan reads or writes, with the configured partition count.

The topics come from the contracts (schemas.registry): each service that publishes decisions
also keeps its timers on a topic of its own, and a service with a repartition topic reads its own
decisions re-keyed there."""
from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.registry import DECISION_TOPICS, INPUT_TOPICS, REPARTITION_TOPICS, dlq_topic

from ..audit.checkpoints import TOPIC as CHECKPOINT_TOPIC
from ..runtime.timers import timer_topic


def all_topics() -> list[str]:
    topics = []
    for topic in INPUT_TOPICS:
        topics += [topic, dlq_topic(topic)]
    topics += list(DECISION_TOPICS.values())
    topics += [timer_topic(service) for service in DECISION_TOPICS]
    topics += [repartition.topic for repartition in REPARTITION_TOPICS.values()]
    topics.append(CHECKPOINT_TOPIC)
    return topics


async def create_topics(bootstrap: str, partitions: int, checkpoint_topic: str = CHECKPOINT_TOPIC) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in all_topics()
                  if name != CHECKPOINT_TOPIC]  # configured apart, under its configured name
        wanted.append(await _checkpoint_topic(admin, checkpoint_topic))
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _checkpoint_topic(admin: AIOKafkaAdminClient, name: str) -> NewTopic:
    """The witness of the signed checkpoints (docs/tamper-evidence.md): kept for ever (a
    checkpoint aged out would read as deleted), one partition (one order for every service's
    checkpoints, whatever the input partitions become), replicated as far as the cluster allows."""
    brokers = len((await admin.describe_cluster())["brokers"])
    replicas = min(3, max(1, brokers))
    configs = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
    if replicas >= 3:
        configs["min.insync.replicas"] = "2"
    return NewTopic(name, num_partitions=1, replication_factor=replicas, topic_configs=configs)
