"""Builders of cards inputs and an in-memory runner of the cards decider (no broker, no database).

The runner does what the runtime does for a multi-stream decider: load the input's streams,
decide, turn decisions into envelopes, check each targets a loaded stream, evolve and append.
Inputs are real contract-valid events (encoded and decoded through the schemas).
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from schemas.decision import validate_decision
from schemas.decision_payloads import validate_decision_payload
from schemas.encoding import encode_event
from schemas.validation import decode_event
from services.cards.decider import CardsDecider
from services.cards.domain.policy import CardsPolicySchema, build_policy
from services.cards.domain.state import CardState, OutletState, card_stream, outlet_stream
from services.common.decider import Rejected
from services.common.decisions import decision_envelopes
from services.common.ids import derived_id
from services.common.policy import load_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=SHANGHAI)
EXPIRES = datetime(2028, 12, 31, 23, 59, 59, tzinfo=SHANGHAI)
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "services/cards/policy/default.json"
INVENTORY = "cards.inventory.v1"
COMPLAINT = "cards.complaint.v1"

_ids = itertools.count()


def policy(path: Path = DEFAULT_POLICY):
    return load_policy(path, CardsPolicySchema(), build_policy)


def money(fen: int) -> dict:
    return {"amountMinor": fen, "currency": "CNY"}


def event(topic: str, payload: dict, at: datetime, event_id: str | None = None):
    """A contract-valid InputEvent, as the worker would decode it."""
    value = encode_event(
        topic, payload, event_id=event_id or derived_id("cards-test", next(_ids)), event_time=at, source="test"
    )
    return decode_event(topic, value)


def batch(batch_id: str, outlet: str, serials: list[str], face: int = 5_000, at: datetime = T0,
          expires: datetime | None = EXPIRES):
    return event(INVENTORY, {"action": "batchIssued", "batchId": batch_id, "outletId": outlet,
                             "cardSerials": serials, "faceValue": money(face), "expiresAt": expires}, at)


def activated(serial: str, outlet: str | None, at: datetime = T0, expires: datetime | None = None):
    return event(INVENTORY, {"action": "activated", "cardSerial": serial, "outletId": outlet, "expiresAt": expires}, at)


def used(serial: str, fen: int, at: datetime = T0):
    return event(INVENTORY, {"action": "used", "cardSerial": serial, "amount": money(fen)}, at)


def topped_up(serial: str, fen: int, at: datetime = T0, expires: datetime | None = None):
    return event(INVENTORY, {"action": "toppedUp", "cardSerial": serial, "amount": money(fen), "expiresAt": expires}, at)


def blocked(serial: str, at: datetime = T0, outlet: str | None = None):
    return event(INVENTORY, {"action": "blocked", "cardSerial": serial, "outletId": outlet}, at)


def expired(serial: str, at: datetime = T0, outlet: str | None = None):
    return event(INVENTORY, {"action": "expired", "cardSerial": serial, "outletId": outlet}, at)


def complaint(serial: str, outlet: str, at: datetime = T0, complaint_id: str | None = None,
              problem: str = "chargeDeductedWithoutService", charge_related: bool = True,
              wrongly: int | None = None):
    return event(COMPLAINT, {
        "complaintId": complaint_id or f"CMP-{serial}-{next(_ids)}", "cardSerial": serial, "outletId": outlet,
        "problem": problem, "chargeRelated": charge_related,
        "wronglyConsumed": money(wrongly) if wrongly is not None else None, "receivedBy": "STAFF-01",
    }, at)


class World:
    """The cards decider driven the way the runtime drives it, over an in-memory log."""

    def __init__(self, loaded=None):
        self.decider = CardsDecider()
        self.loaded = loaded or policy()
        self.streams: dict[str, list[dict]] = {}
        self.states: dict = {}
        self.log: list[dict] = []
        self.dead_letters: list[tuple[object, Rejected]] = []

    def state(self, stream_id: str):
        if stream_id not in self.states:
            self.states[stream_id] = self.decider.initial_state(stream_id)
        return self.states[stream_id]

    def card(self, serial: str) -> CardState:
        return self.state(card_stream(serial))

    def outlet(self, outlet_id: str) -> OutletState:
        return self.state(outlet_stream(outlet_id))

    def feed(self, *events) -> list[dict]:
        out = []
        for e in events:
            out.extend(self._feed_one(e))
        return out

    def _feed_one(self, e) -> list[dict]:
        streams = self.decider.stream_ids(e)
        view = {sid: self.state(sid) for sid in streams}
        try:
            decisions = self.decider.decide(view, e, self.loaded.rules)
        except Rejected as exc:
            self.dead_letters.append((e, exc))
            return []
        envelopes = decision_envelopes(
            decisions, event=e, stream_id=streams[0], service="cards", service_version="test",
            policy_version=self.loaded.version,
        )
        for envelope in envelopes:
            validate_decision(envelope, "cards.decisions.v1")  # every decision keeps the published contract
            validate_decision_payload(orjson.loads(orjson.dumps(envelope)), unknown_type_ok=True)  # its type's schema
            envelope = orjson.loads(orjson.dumps(envelope))  # as stored: JSON only
            target = envelope["streamId"]
            assert target in view, f"{envelope['decisionType']} targets {target}, which the input did not load"
            view[target] = self.decider.evolve(view[target], envelope)
            self.streams.setdefault(target, []).append(envelope)
            self.log.append(envelope)
        self.states.update(view)
        return [e for e in self.log[len(self.log) - len(envelopes):]]

    def of_type(self, decision_type: str) -> list[dict]:
        return [d for d in self.log if d["decisionType"] == decision_type]

    def replayed(self) -> dict:
        """Every stream's state rebuilt from its stored decisions alone (A.REPLAY)."""
        out = {}
        for stream_id, decisions in self.streams.items():
            state = self.decider.initial_state(stream_id)
            for decision in decisions:
                state = self.decider.evolve(state, decision)
            out[stream_id] = state
        return out


def serials(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(start, start + n)]


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
