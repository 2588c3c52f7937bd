"""Durable timers: decisions ask for a wake-up; at its due time it comes back as an input.

A due timer is published to the service's timer topic, keyed like the stream's other
inputs, and decided like any input: its business time is the due time, not the moment it
was noticed, so replays decide the same. Its event id is derived from the timer id, so a
timer published twice (crash, two workers) is decided once.

"Due" is judged against the service's business clock by default: the latest business time
among the inputs it has decided (never more than a few minutes ahead of the wall clock).
Time comes from events, so replaying a past quarter fires each timer among the inputs of
its own day. WUGUAN_TIMER_CLOCK=wall judges against the wall clock instead.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from schemas.envelope import InputEvent
from schemas.errors import InvalidEvent

from ..eventstore.records import StoredEvent
from ..ids import derived_id
from ..timefmt import parse_rfc3339, rfc3339
from .metrics import TIMERS_FIRED

log = logging.getLogger(__name__)

TIMER_EVENT_TYPE = "wuguan.timer.v1"
TIMER_TOPIC_SUFFIX = ".timers.internal"


def timer_topic(service: str) -> str:
    return f"wuguan.{service}{TIMER_TOPIC_SUFFIX}"


def timer_message(service: str, timer_id: str, due_at: datetime, kind: str, stream_id: str, data: dict) -> bytes:
    return orjson.dumps(
        {
            "eventId": derived_id("timer", timer_id),
            "eventType": TIMER_EVENT_TYPE,
            "schemaVersion": 1,
            "eventTime": rfc3339(due_at),
            "source": f"wuguan.{service}.timers",
            "correlationId": None,
            "causationId": timer_id,
            "payload": {"timerId": timer_id, "kind": kind, "streamId": stream_id, "data": data},
        }
    )


def decode_timer(value: bytes) -> InputEvent:
    try:
        raw = orjson.loads(value)
        payload = raw["payload"]
        return InputEvent(
            event_id=str(raw["eventId"]),
            event_type=TIMER_EVENT_TYPE,
            schema_version=1,
            event_time=parse_rfc3339(raw["eventTime"]),
            source=str(raw["source"]),
            correlation_id=None,
            causation_id=str(raw["causationId"]),
            payload={
                "timerId": str(payload["timerId"]),
                "kind": str(payload["kind"]),
                "streamId": str(payload["streamId"]),
                "data": dict(payload["data"]),
            },
            raw=raw,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent("envelope_invalid", f"timer message unreadable: {type(exc).__name__}") from None


# A business time far in the future (a bad upstream clock) must not fire every timer at once.
MAX_CLOCK_LEAD = "5 minutes"


async def advance_business_clock(conn: asyncpg.Connection, service: str, latest: dict[str, datetime]) -> None:
    """Move each partition's clock (chain -> the latest business time of the batch's inputs from it)
    forward, capped near the wall clock. Only the batch's own partitions' rows are written, and
    only their owner writes them: writes for other partitions never wait on these (migration 0012)."""
    if not latest:
        return
    chains = sorted(latest)  # one order, for a batch that spans several partitions
    await conn.execute(
        "INSERT INTO business_clock_partitions (service, chain_id, watermark)"
        f" SELECT $1, u.chain_id, LEAST(u.watermark, clock_timestamp() + interval '{MAX_CLOCK_LEAD}')"
        " FROM unnest($2::text[], $3::timestamptz[]) AS u(chain_id, watermark)"
        " ON CONFLICT (service, chain_id)"
        " DO UPDATE SET watermark = GREATEST(business_clock_partitions.watermark, EXCLUDED.watermark)",
        service, chains, [latest[c] for c in chains],
    )


async def project_timers(conn: asyncpg.Connection, service: str, stored: list[StoredEvent], fired: list[str]) -> None:
    """Keep pending_timers in step with the decisions, inside the deciding transaction."""
    scheduled, cancelled = [], list(fired)
    for event in stored:
        body = event.payload["payload"]
        timer = body.get("timer")
        if timer:
            scheduled.append(
                (
                    timer["timerId"], service, event.stream_id, timer["key"],
                    parse_rfc3339(timer["dueAt"]), timer["dueAt"], timer["kind"], timer["data"],
                )
            )
        cancelled.extend(body.get("cancelsTimers", ()))
    if cancelled:
        await conn.execute("DELETE FROM pending_timers WHERE timer_id = ANY($1::text[])", cancelled)
    if scheduled:
        await conn.executemany(
            "INSERT INTO pending_timers (timer_id, service, stream_id, partition_key, due_at, due_at_text, kind, data)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (timer_id) DO NOTHING",
            scheduled,
        )


class TimerPublisher:
    """Publishes due timers; safe to run in every replica (SKIP LOCKED, idempotent ids)."""

    def __init__(self, *, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, interval_s: float,
                 batch: int = 1000, clock: str = "business"):
        self.service = service
        self.clock = clock
        self.pool = pool
        self.producer = producer
        self.interval_s = interval_s
        self.batch = batch
        self.topic = timer_topic(service)

    async def publish_due(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            now = (
                "clock_timestamp()"
                if self.clock == "wall"
                else "(SELECT watermark FROM business_clocks WHERE service = $1)"
            )
            rows = await conn.fetch(
                "SELECT timer_id, stream_id, partition_key, due_at_text, kind, data FROM pending_timers"
                f" WHERE service = $1 AND published_at IS NULL AND due_at <= {now}"
                " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                self.service,
                self.batch,
            )
            if not rows:
                return 0
            futures = [
                await self.producer.send(
                    self.topic,
                    key=r["partition_key"].encode(),
                    value=timer_message(
                        self.service, r["timer_id"], parse_rfc3339(r["due_at_text"]), r["kind"], r["stream_id"], r["data"]
                    ),
                )
                for r in rows
            ]
            for future in futures:
                await future
            await conn.execute(
                "UPDATE pending_timers SET published_at = clock_timestamp() WHERE timer_id = ANY($1::text[])",
                [r["timer_id"] for r in rows],
            )
        TIMERS_FIRED.labels(self.service).inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        while True:
            try:
                published = await self.publish_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying: timers wait in Postgres meanwhile
                log.warning("timer publisher: %s", type(exc).__name__)
                published = 0
            if published < self.batch:
                await asyncio.sleep(self.interval_s)
