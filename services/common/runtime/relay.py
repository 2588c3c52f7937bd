"""Publishes stored decisions to the service's decision topic in commit order.

One relay per service holds a Postgres advisory lock, so replicas never publish out of
order; the others stand by. Publishing is at-least-once (a crash between the broker's
acknowledgement and the checkpoint repeats a page); consumers dedupe on decisionId.

A service with a repartition route (schemas.registry.Repartition) also gets the decisions of the
route's types again on the route's topic, keyed by a payload field, in the same commit order: per
page, one message per key holding that key's decisions' notes as a JSON array (at most
NOTES_PER_MESSAGE). A message per decision doubled the broker's and the worker's work per CDR;
which decisions share a message changes nothing, as the reader decides each one on its own. A note
is the decision's identity and the payload fields its reader decides on (note_sql), not the whole
decision: a rated CDR's note is under a third of its size, and carries no phone number.
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from time import monotonic

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from schemas.registry import Repartition

from ..db import connect
from ..eventstore.store import COMMIT_ORDER, committed_after
from .decision_inputs import DECISION_TYPE_HEADER, NOTE_ENVELOPE
from .metrics import RELAY_LAG, RELAY_PUBLISHED
from .partition_batches import send_keyed

log = logging.getLogger(__name__)

RELAY_LOCK_BASE = 7_700_100
NOTES_PER_MESSAGE = 200  # a routed message stays far below the broker's message size limit
# How often a relay that is behind counts what it has left. The count scans the whole backlog: once
# a page, a relay 20k decisions behind spent more time counting than publishing, and fell further
# behind (docs/performance.md, run 16).
LAG_COUNT_EVERY_S = 5.0


def note_sql(route: Repartition) -> str:
    """The SQL of a stored decision's note on the route's topic, as JSON text: the envelope fields
    a repartitioned input is read by (decision_inputs.NOTE_ENVELOPE) and the route's payload fields.
    Built by Postgres from `payload`, so the relay does not decode the decision to cut it. The field
    names are written into the SQL: one that is not a plain name refuses to build it."""
    for name in (*NOTE_ENVELOPE, *route.note_fields):
        if not name.isidentifier():
            raise ValueError(f"{route.topic}: note field {name!r} is not a plain field name")

    def pairs(source: str, fields: tuple[str, ...]) -> str:
        return ", ".join(f"'{name}', {source}->'{name}'" for name in fields)
    body = pairs("payload->'payload'", route.note_fields)
    return f"jsonb_build_object({pairs('payload', NOTE_ENVELOPE)}, 'payload', jsonb_build_object({body}))::text"


def routed_messages(routed: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """(key, a stored decision's note) in log order -> (key, JSON array) messages: one per key and
    NOTES_PER_MESSAGE decisions, each key's decisions in their order."""
    by_key: dict[str, list[str]] = {}
    for key, body in routed:
        by_key.setdefault(key, []).append(body)
    return [(key.encode(), f"[{','.join(bodies[i:i + NOTES_PER_MESSAGE])}]".encode())
            for key, bodies in by_key.items() for i in range(0, len(bodies), NOTES_PER_MESSAGE)]


class Relay:
    def __init__(self, *, service: str, topic: str, database_url: str, role: str | None,
                 producer: AIOKafkaProducer, interval_s: float, page_size: int = 1000, log_decisions: bool = False,
                 route: Repartition | None = None):
        self.service = service
        self.route = route
        # One log line a decision for machine logs (--log-format json); people's text logs stay terse.
        self.log_decisions = log_decisions
        self.topic = topic
        self.database_url = database_url
        self.role = role
        self.producer = producer
        self.interval_s = interval_s
        self.page_size = page_size
        self.name = f"relay:{service}"
        # $1, $2: the checkpoint; $3: the service; $4: the page's size; $5, $6: the route's types and key.
        # Only this service's appends are walked (store.committed_after): a relay reads no other's rows.
        routed = "event_type = ANY($5::text[])"
        self.page_sql = (
            "SELECT tx_id, global_position, stream_id, event_type, payload::text AS body,"
            f" CASE WHEN {routed} THEN payload->'payload'->>$6 END AS route_key,"
            f" CASE WHEN {routed} THEN {note_sql(route) if route else 'NULL'} END AS note"
            f" FROM {committed_after('$4', service='$3')} ORDER BY {COMMIT_ORDER} LIMIT $4")
        self._lag_counted_at = float("-inf")

    async def publish_page(self, conn: asyncpg.Connection) -> int:
        """Publish the next page of this service's decisions; returns the page's size."""
        checkpoint = await conn.fetchrow(
            "SELECT tx_id, global_position FROM relay_checkpoints WHERE relay = $1", self.name)
        after = (checkpoint["tx_id"], checkpoint["global_position"]) if checkpoint else (0, 0)
        # The stored JSON text goes out as it is: decoding every decision just written and
        # encoding it again was a fifth of a worker's time (docs/performance.md).
        route = self.route or Repartition("", frozenset(), "")
        page = await conn.fetch(self.page_sql, *after, self.service, self.page_size, list(route.decision_types),
                                route.key_field)
        if not page:
            RELAY_LAG.labels(self.service).set(0)
            return 0
        futures = await send_keyed(self.producer, self.topic, [
            (e["stream_id"].encode(), e["body"].encode(), [
                ("wuguan-global-position", str(e["global_position"]).encode()),
                # lets a consumer skip decision types it does not use without decoding
                (DECISION_TYPE_HEADER, e["event_type"].encode()),
            ]) for e in page])
        routed = [(e["route_key"], e["note"]) for e in page if e["route_key"] is not None]
        futures += await send_keyed(self.producer, route.topic,
                                    [(key, value, []) for key, value in routed_messages(routed)])
        for future in futures:
            await future
        if self.log_decisions:  # decoding each body only when asked for
            self._log_published(page)
        after = (page[-1]["tx_id"], page[-1]["global_position"])
        await conn.execute(
            "INSERT INTO relay_checkpoints (relay, tx_id, global_position) VALUES ($1, $2, $3)"
            " ON CONFLICT (relay) DO UPDATE SET tx_id = $2, global_position = $3",
            self.name, *after,
        )
        RELAY_PUBLISHED.labels(self.service).inc(len(page))
        if len(page) < self.page_size:  # caught up: nothing of this service is left behind
            RELAY_LAG.labels(self.service).set(0)
        elif monotonic() - self._lag_counted_at >= LAG_COUNT_EVERY_S:
            self._lag_counted_at = monotonic()
            # By whole appends: the one the page ended in counts whole, a batch's worth at most.
            lag = await conn.fetchval(
                "SELECT coalesce(sum(decisions), 0) FROM event_appends"
                " WHERE service = $3 AND (tx_id, last_position) > ($1::xid8, $2)", *after, self.service)
            RELAY_LAG.labels(self.service).set(lag)
        return len(page)

    def _log_published(self, events) -> None:
        """One line a decision, with its ids and rules (ids and codes only: A.PRIVACY)."""
        for e in events:
            body = orjson.loads(e["body"])
            log.info("published %s", e["event_type"], extra={
                "service": self.service, "decisionId": body.get("decisionId"), "decisionType": e["event_type"],
                "streamId": e["stream_id"], "ruleIds": body.get("ruleIds"), "outcome": body.get("outcome"),
                "globalPosition": e["global_position"]})

    async def run(self) -> None:
        lock_key = RELAY_LOCK_BASE + zlib.crc32(self.name.encode())
        while True:
            conn = None
            try:
                conn = await connect(self.database_url, role=self.role)
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
                    await asyncio.sleep(max(self.interval_s, 1.0))
                while True:
                    if await self.publish_page(conn) < self.page_size:
                        await asyncio.sleep(self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect and go on from the checkpoint
                log.warning("relay %s: %s; reconnecting", self.service, type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    await conn.close()
