"""The producer every stage publishes its workload with: acks from all replicas, no idempotence (Tansu has none)."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=False,
                            max_batch_size=256 * 1024)
