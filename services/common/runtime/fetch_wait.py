"""faust hard-codes the consumer's fetch_max_wait_ms to 1500. A broker that holds every
fetch for the full wait (the embedded Tansu does) then adds up to 1.5 s to each hop, which
breaks the card-replacement latency goal. This sets the wait from configuration on the
consumer faust creates, before it starts."""
from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_wait_ms = {"value": None}


def _create_worker_consumer(self, transport):
    consumer = _original(self, transport)
    if _wait_ms["value"] is not None:
        consumer._fetch_max_wait_ms = _wait_ms["value"]
    return consumer


def set_fetch_max_wait(ms: int) -> None:
    _wait_ms["value"] = ms
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
