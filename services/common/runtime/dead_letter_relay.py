"""Sends the dead letters stored in Postgres to `<topic>.dlq`, and marks them sent.

Each letter is built to fit the broker's limit (schemas.validation.dead_letter), sent with
its own acknowledgement, and marked sent only once acknowledged. A letter the broker refuses
(size, serialization, broker down) is counted and retried later with a growing delay; the
others go on, and so does consumption, which never waits for this relay. Several replicas
may run it: each claims rows for a lease (SKIP LOCKED), so a letter is sent by one at a time.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.registry import dlq_topic
from schemas.validation import DEFAULT_DEAD_LETTER_MAX_BYTES, dead_letter

from .metrics import DEAD_LETTER_SEND_FAILURES, DEAD_LETTERS_UNDELIVERED, DEAD_LETTERS_UNSENT

log = logging.getLogger(__name__)

CONSUMER_HEADER = "wuguan-consumer"
ERROR_CODE_HEADER = "wuguan-error-code"
MAX_RETRY_DELAY_S = 300
# A Kafka key longer than this is replaced on the letter's record by its SHA-256 (hex): the
# letter carries the key's text anyway, and the record must stay under the broker's limit.
MAX_RECORD_KEY_BYTES = 1024


def record_key(key: bytes | None) -> bytes | None:
    if key is None or len(key) <= MAX_RECORD_KEY_BYTES:
        return key
    return hashlib.sha256(key).hexdigest().encode()


class DeadLetterRelay:
    def __init__(self, *, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, interval_s: float,
                 max_bytes: int = DEFAULT_DEAD_LETTER_MAX_BYTES, send_timeout_s: float = 30.0, page_size: int = 200):
        # A claimed letter is not claimed again (by this relay or a replica's) before the lease
        # ends; a relay that dies holding it only delays it by that much.
        self.service = service
        self.pool = pool
        self.producer = producer
        self.interval_s = interval_s
        self.max_bytes = max_bytes
        self.send_timeout_s = send_timeout_s
        self.page_size = page_size
        self.lease_s = send_timeout_s * 2
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def deliver_due(self) -> int:
        """Send every letter that is due; returns how many the broker acknowledged."""
        sent = 0
        while True:
            acknowledged, taken = await self._deliver_page()
            sent += acknowledged
            if taken < self.page_size:
                await self._report()
                return sent

    async def _deliver_page(self) -> tuple[int, int]:
        # Claimed in one short statement and marked in another: no transaction and no pooled
        # connection is held while the broker takes its time.
        async with self.pool.acquire() as conn:
            rows = sorted(await conn.fetch(
                "UPDATE dead_lettered_inputs d SET next_attempt_at = clock_timestamp() + $3 * interval '1 second'"
                ' FROM (SELECT consumer, topic, partition, "offset" FROM dead_lettered_inputs'
                "       WHERE consumer = $1 AND published_at IS NULL AND next_attempt_at <= clock_timestamp()"
                '       ORDER BY topic, partition, "offset" LIMIT $2 FOR UPDATE SKIP LOCKED) due'
                ' WHERE (d.consumer, d.topic, d.partition, d."offset") = (due.consumer, due.topic, due.partition,'
                ' due."offset")'
                ' RETURNING d.topic, d.partition, d."offset", d.code, d.message, d.message_key, d.original, d.failed_at',
                self.service, self.page_size, self.lease_s,
            ), key=lambda r: (r["topic"], r["partition"], r["offset"]))
        if not rows:
            return 0, 0
        outcomes = await self._send_each(rows)
        sent = [r for r, failure in zip(rows, outcomes) if failure is None]
        failed = [(r, failure) for r, failure in zip(rows, outcomes) if failure is not None]
        async with self.pool.acquire() as conn, conn.transaction():
            if sent:
                await conn.executemany(
                    "UPDATE dead_lettered_inputs SET published_at = clock_timestamp()"
                    ' WHERE consumer = $1 AND topic = $2 AND partition = $3 AND "offset" = $4',
                    [(self.service, r["topic"], r["partition"], r["offset"]) for r in sent],
                )
            if failed:
                await conn.executemany(
                    "UPDATE dead_lettered_inputs SET attempts = attempts + 1, last_error = $5,"
                    " next_attempt_at = clock_timestamp()"
                    "   + least(power(2, least(attempts, 16)), $6) * interval '1 second'"
                    ' WHERE consumer = $1 AND topic = $2 AND partition = $3 AND "offset" = $4',
                    [(self.service, r["topic"], r["partition"], r["offset"], failure, MAX_RETRY_DELAY_S)
                     for r, failure in failed],
                )
        for row, failure in failed:
            DEAD_LETTER_SEND_FAILURES.labels(self.service).inc()
            log.warning("dead letter for %s[%d]@%d not sent (%s); kept in Postgres, retried later",
                        row["topic"], row["partition"], row["offset"], failure)
        return len(sent), len(rows)

    async def _send_each(self, rows) -> list[str | None]:
        """Hand every letter to the producer, then await each acknowledgement on its own, so one
        failure does not skip the rest; all within one deadline, well inside the claim's lease.
        Returns None per letter sent, else the failure's name."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_timeout_s
        pending: list[asyncio.Future | str] = []
        for row in rows:
            try:
                body = self._letter(row)
                pending.append(await asyncio.wait_for(self.producer.send(
                    dlq_topic(row["topic"]), key=record_key(row["message_key"]), value=body,
                    headers=[(CONSUMER_HEADER, self.service.encode()), (ERROR_CODE_HEADER, row["code"].encode())],
                ), max(0.0, deadline - loop.time())))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # too large for the producer, a defect, the broker gone
                pending.append(type(exc).__name__)
        outcomes: list[str | None] = []
        for future in pending:
            if isinstance(future, str):
                outcomes.append(future)
                continue
            try:
                await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
                outcomes.append(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcomes.append(type(exc).__name__)
        return outcomes

    def _letter(self, row) -> bytes:
        failed_at: datetime = row["failed_at"]
        return dead_letter(
            row["topic"], row["partition"], row["offset"], row["message_key"], row["original"],
            _StoredReason(row["code"], row["message"]), failed_at, consumer=self.service, max_bytes=self.max_bytes,
        )

    async def _report(self) -> None:
        async with self.pool.acquire() as conn:
            unsent, undelivered = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE attempts > 0) FROM dead_lettered_inputs"
                " WHERE consumer = $1 AND published_at IS NULL", self.service,
            )
        DEAD_LETTERS_UNSENT.labels(self.service).set(unsent)
        DEAD_LETTERS_UNDELIVERED.labels(self.service).set(undelivered)

    async def run(self) -> None:
        while True:
            self._woken.clear()  # before delivering: a wake-up during delivery is kept
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres away: the letters wait in it, nothing is lost
                log.warning("dead-letter relay %s: %s; retrying", self.service, type(exc).__name__)
            try:
                await asyncio.wait_for(self._woken.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass


class _StoredReason(Exception):
    """The reason as the worker stored it: already value-free, kept verbatim in the letter."""

    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code, self.message = code, message
