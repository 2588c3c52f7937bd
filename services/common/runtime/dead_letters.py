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
    headers: tuple = ()  # (name, bytes) pairs as Kafka delivered them


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, service: str, pool=None):
        self._producer = producer
        self._service = service
        self._pool = pool

    async def send(self, failures: list[tuple[InputMessage, Exception]]) -> None:
        """Publish each failure once, wait for the broker's acknowledgements, and record them.

        A bad input redelivered after a rebalance is recognised by (topic, partition, offset)
        and not dead-lettered again; a crash between publishing and recording can still
        repeat one, which consumers of the DLQ tolerate (at-least-once).
        """
        if not failures:
            return
        if self._pool is not None:
            failures = await self._not_yet_recorded(failures)
        futures = []
        now = datetime.now(timezone.utc)
        for message, error in failures:
            code = getattr(error, "code", "processing_error")
            body = dead_letter(
                message.topic, message.partition, message.offset, message.key, message.value, error, now,
                consumer=self._service,
            )
            futures.append(await self._producer.send(dlq_topic(message.topic), key=message.key, value=body))
            DEAD_LETTERS.labels(self._service, message.topic, code).inc()
            # The message text names fields, never values, so it is safe to log.
            log.warning(
                "dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, code
            )
        for future in futures:
            await future
        if self._pool is not None and failures:
            async with self._pool.acquire() as conn:
                await conn.executemany(
                    'INSERT INTO dead_lettered_inputs (consumer, topic, partition, "offset", code, message)'
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    [
                        (self._service, m.topic, m.partition, m.offset, getattr(e, "code", "processing_error"),
                         getattr(e, "message", type(e).__name__))
                        for m, e in failures
                    ],
                )

    async def _not_yet_recorded(self, failures):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                'SELECT topic, partition, "offset" FROM dead_lettered_inputs WHERE consumer = $1'
                ' AND (topic, partition, "offset") IN (SELECT * FROM unnest($2::text[], $3::int[], $4::bigint[]))',
                self._service,
                [m.topic for m, _ in failures],
                [m.partition for m, _ in failures],
                [m.offset for m, _ in failures],
            )
        seen = {(r["topic"], r["partition"], r["offset"]) for r in rows}
        return [(m, e) for m, e in failures if (m.topic, m.partition, m.offset) not in seen]
