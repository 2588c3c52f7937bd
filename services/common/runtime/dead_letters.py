"""Sends inputs that cannot be decided to `<topic>.dlq`, with the reason (nothing is lost)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from schemas.registry import dlq_topic
from schemas.validation import dead_letter

from .metrics import DEAD_LETTERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, service: str):
        self._producer = producer
        self._service = service

    async def send(self, failures: list[tuple[InputMessage, Exception]]) -> None:
        """Publish every failure and wait for the broker's acknowledgement of each."""
        futures = []
        now = datetime.now(timezone.utc)
        for message, error in failures:
            code = getattr(error, "code", "processing_error")
            body = dead_letter(
                message.topic, message.partition, message.offset, message.key, message.value, error, now
            )
            futures.append(await self._producer.send(dlq_topic(message.topic), key=message.key, value=body))
            DEAD_LETTERS.labels(self._service, message.topic, code).inc()
            # The message text names fields, never values, so it is safe to log.
            log.warning(
                "dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, code
            )
        for future in futures:
            await future
