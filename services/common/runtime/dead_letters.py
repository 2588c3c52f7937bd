"""Records inputs that cannot be decided, durably, in the batch's own transaction.

A dead letter is a row of dead_lettered_inputs before it is a message on `<topic>.dlq`: it
commits with the batch's decisions, so the batch's offsets can be committed knowing that
nothing in it is lost, whatever the broker does next (CONTRACT.DLQ_DURABLE). The row keeps
the whole original; DeadLetterRelay sends the letter and marks it sent.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from schemas.errors import PROCESSING_ERROR

from .metrics import DEAD_LETTERS

log = logging.getLogger(__name__)

Refusal = tuple["InputMessage", Exception]


@dataclass(frozen=True)
class InputMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None
    headers: tuple = ()  # (name, bytes) pairs as Kafka delivered them


def refusal_code(error: Exception) -> str:
    return getattr(error, "code", None) or PROCESSING_ERROR


def refusal_message(error: Exception) -> str:
    # Only codes and messages the project wrote itself: exception texts can quote the data.
    message = getattr(error, "message", None) or f"{type(error).__name__} (details in the service log)"
    return message.replace("\x00", "\ufffd")[:500]


class DeadLetters:
    def __init__(self, service: str, wake: Callable[[], None] | None = None):
        self.service = service
        self._wake = wake or (lambda: None)

    async def record(self, conn: asyncpg.Connection, refusals: list[Refusal]) -> None:
        """Store each refusal inside the caller's transaction. A redelivered input that was
        refused before keeps its first row, so it is dead-lettered once."""
        if not refusals:
            return
        await conn.executemany(
            "INSERT INTO dead_lettered_inputs (consumer, topic, partition, \"offset\", code, message,"
            " message_key, original, original_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT DO NOTHING",
            [(self.service, m.topic, m.partition, m.offset, refusal_code(e), refusal_message(e),
              None if m.key is None else bytes(m.key), None if m.value is None else bytes(m.value),
              0 if m.value is None else len(m.value))
             for m, e in refusals],
        )

    def committed(self, refusals: list[Refusal]) -> None:
        """Count and log what the transaction made durable, and wake the relay to send it."""
        if not refusals:
            return
        for (topic, code), n in Counter((m.topic, refusal_code(e)) for m, e in refusals).items():
            DEAD_LETTERS.labels(self.service, topic, code).inc(n)
        for message, error in refusals:
            # The code and the message name fields, never values, so they are safe to log.
            log.warning("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset,
                        refusal_code(error), extra={"service": self.service, "topic": message.topic,
                                                    "partition": message.partition, "offset": message.offset,
                                                    "code": refusal_code(error)})
        self._wake()
