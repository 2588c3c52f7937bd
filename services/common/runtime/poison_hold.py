"""Holds a stream's order-sensitive inputs behind a poisoned one (CONTRACT.POISON_HOLD).

An input that fails in processing (the decider's decide or evolve raised, or the database
refused what it decided) is dead-lettered as `processing_error` and the partition goes on. Its
stream then lacks that input's effect, so a later input whose meaning depends on what came
before (a payment after the bill it pays) would be decided against the wrong state. The decider
says which inputs those are with an optional `order_sensitive(event) -> bool`; a decider without
it holds nothing.

While a stream is held, each order-sensitive input of it gets, instead of its decisions:
- a `<prefix>.StreamBlocked` decision (outcome `blocked`), appended to the stream
  `held:<stream>` so that the held stream's own state and evolve are never touched: its id is
  derived from the input's id and its time is the input's, like any decision (A.REPLAY);
- a dead letter `stream_blocked`, which keeps the whole original for `wuguan dlq replay`.
No processed-input row is written, so the replayed input is decided like a new one.

The hold is released in the transaction that decides the poisoned input itself, i.e. when it is
replayed after the fix. The dead letters are replayed in their order (the poisoned one first), so
the held inputs follow it. The hold is a row of `held_streams`, written in the same transaction as
the poisoned input's dead letter.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.registry import DECISION_TOPICS
from schemas.errors import PROCESSING_ERROR, InvalidEvent

from ..decider import Decision
from ..decisions import decision_envelopes
from ..eventstore import store
from ..eventstore.records import NewEvent, StoredEvent

log = logging.getLogger(__name__)

RULE_ID = "CONTRACT.POISON_HOLD"
STREAM_BLOCKED = "stream_blocked"  # the dead letter's code
HOLD_STREAM_PREFIX = "held:"  # stream ids never contain ':' after a service prefix like this one


class Poisoned(InvalidEvent):
    """A processing_error dead letter that holds its input's stream."""

    def __init__(self, message: str, stream_id: str, event_id: str):
        super().__init__(PROCESSING_ERROR, message)
        self.stream_id = stream_id
        self.event_id = event_id


class StreamHeld(InvalidEvent):
    """The dead letter of an input held behind a poisoned one."""

    def __init__(self, poison: tuple[str, int, int] | None):
        where = "" if poison is None else " (%s[%d]@%d)" % poison
        super().__init__(STREAM_BLOCKED, f"held behind an input of its stream that could not be processed{where};"
                                         " replay it after that one")


def hold_stream(stream_id: str) -> str:
    return HOLD_STREAM_PREFIX + stream_id


@dataclass
class BatchHolds:
    """The holds one batch reads, adds, releases, and the StreamBlocked decisions it makes."""

    service: str
    decision_prefix: str
    service_version: str
    policy_version: str
    order_sensitive: Callable[[object], bool] | None
    enabled: bool = True
    held: dict[str, tuple[str, tuple[str, int, int] | None]] = field(default_factory=dict)  # stream -> poison
    released: set[str] = field(default_factory=set)
    releasing: set[str] = field(default_factory=set)  # held streams whose poisoned input is in the batch
    blocked: dict[str, list[NewEvent]] = field(default_factory=lambda: defaultdict(list))

    def blocks(self, event, streams: tuple[str, ...]) -> bool:
        """True for an order-sensitive input of a held stream, except the poisoned input itself."""
        if not streams or streams[0] not in self.held:
            return False
        return self.held[streams[0]][0] != event.event_id and self.order_sensitive(event)

    def skips_loading(self, event, streams: tuple[str, ...]) -> bool:
        """A held input needs no state, unless its stream may be released earlier in the batch."""
        return self.blocks(event, streams) and streams[0] not in self.releasing

    def block(self, message, event, stream_id: str):
        """The refusal of a held input; its StreamBlocked decision is appended by write()."""
        poison_id, poison_at = self.held[stream_id]
        decision = Decision(f"{self.decision_prefix}.StreamBlocked", (RULE_ID,), "blocked",
                            {"heldStream": stream_id, "poisonedBy": poison_id}, reason_codes=(STREAM_BLOCKED,))
        [envelope] = decision_envelopes([decision], event=event, stream_id=hold_stream(stream_id),
                                        service=self.service, service_version=self.service_version,
                                        policy_version=self.policy_version,
                                        names_input=False)  # the held input is decided on its release
        self.blocked[hold_stream(stream_id)].append(NewEvent(
            event_id=envelope["decisionId"], stream_id=envelope["streamId"], event_type=envelope["decisionType"],
            service=self.service, business_time=event.event_time, payload=envelope,
            causation_id=event.event_id, correlation_id=event.correlation_id,
            chain_id=store.chain_name(self.service, message.topic, message.partition)))
        return message, StreamHeld(poison_at)

    def poison(self, message, event, streams: tuple[str, ...], reason: str):
        """The refusal of an input that failed in processing; later inputs of the batch see the hold."""
        if not streams or not self.enabled:
            return message, InvalidEvent(PROCESSING_ERROR, reason)
        self.held.setdefault(streams[0], (event.event_id, (message.topic, message.partition, message.offset)))
        return message, Poisoned(reason, streams[0], event.event_id)

    def decided(self, event, streams: tuple[str, ...]) -> None:
        """The poisoned input itself was decided (replayed after a fix): its stream goes on."""
        if streams and self.held.get(streams[0], (None,))[0] == event.event_id:
            del self.held[streams[0]]
            self.released.add(streams[0])

    async def write(self, conn, refusals: list) -> list[StoredEvent]:
        """Record the batch's new holds and releases and append its StreamBlocked decisions,
        in the caller's transaction."""
        poisoned = [(m, e) for m, e in refusals if isinstance(e, Poisoned)]
        if poisoned:
            await conn.executemany(
                'INSERT INTO held_streams (consumer, stream_id, poison_event_id, topic, partition, "offset")'
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                [(self.service, e.stream_id, e.event_id, m.topic, m.partition, m.offset) for m, e in poisoned])
        if self.released:
            await conn.execute("DELETE FROM held_streams WHERE consumer = $1 AND stream_id = ANY($2::text[])",
                               self.service, list(self.released))
            log.warning("released %d held stream(s): their poisoned input was decided", len(self.released))
        return await self._append_blocked(conn)

    async def _append_blocked(self, conn) -> list[StoredEvent]:
        if not self.blocked:
            return []
        ids = [e.event_id for events in self.blocked.values() for e in events]
        # A held input delivered again (or replayed while still held) was blocked once already.
        known = {str(r["event_id"]) for r in await conn.fetch(
            "SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])", ids)}
        fresh = {sid: [e for e in events if e.event_id not in known] for sid, events in self.blocked.items()}
        fresh = {sid: events for sid, events in fresh.items() if events}
        if not fresh:
            return []
        rows = await conn.fetch("SELECT stream_id, max(stream_version) AS v FROM events"
                                " WHERE stream_id = ANY($1::text[]) GROUP BY stream_id", list(fresh))
        versions = {r["stream_id"]: r["v"] for r in rows}
        return await store.append(conn, [(versions.get(sid, 0), events) for sid, events in fresh.items()])


class PoisonHolds:
    """Builds each batch's BatchHolds from the holds stored for the streams it touches."""

    def __init__(self, *, service: str, decider, service_version: str, policy_version: str):
        self.service = service
        self.decision_prefix = DECISION_TOPICS[service].split(".")[0] if service in DECISION_TOPICS else service
        self.service_version = service_version
        self.policy_version = policy_version
        # A decider that names no order-sensitive input holds nothing and pays no query for it.
        self.order_sensitive = getattr(decider, "order_sensitive", None)

    def empty(self) -> BatchHolds:
        return BatchHolds(self.service, self.decision_prefix, self.service_version, self.policy_version,
                          self.order_sensitive, enabled=self.order_sensitive is not None)

    async def load(self, conn, fresh: list) -> BatchHolds:
        holds = self.empty()
        streams = list({streams[0] for *_, streams in fresh if streams})
        if streams and holds.enabled:
            rows = await conn.fetch(
                'SELECT stream_id, poison_event_id, topic, partition, "offset" FROM held_streams'
                " WHERE consumer = $1 AND stream_id = ANY($2::text[])", self.service, streams)
            holds.held = {r["stream_id"]: (r["poison_event_id"], (r["topic"], r["partition"], r["offset"]))
                          for r in rows}
            holds.releasing = {streams[0] for _, event, _, streams in fresh
                               if streams and holds.held.get(streams[0], (None,))[0] == event.event_id}
        return holds
