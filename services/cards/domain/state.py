"""What the cards service knows, folded from its own decisions (evolve). Pure.

Two kinds of stream:

- ``cards-card-<serial>``: one card's life (C.STATES): issued to an outlet, activated (sold, or
  handed out as a replacement), used and topped up, blocked, expired, voided by a replacement.
  Its remaining value is derived from these decisions.
- ``cards-outlet-<outletId>``: the outlet's stock as far as replacements are concerned (C.STOCK):
  the cards issued to it that it still holds, and the replacements it has drawn whose new card
  has not been activated at the counter yet (value in transit).

States are immutable; evolve returns a new one, so a batch that fails to commit never leaves a
half-applied state in the runtime's cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from schemas.decision_types.cards import (
    CARD_ACTIVATED, CARD_BLOCKED, CARD_EXPIRED, CARD_ISSUED, CARD_REPLACED, REPLACEMENT_CARD_ACTIVATED,
    REPLACEMENT_DRAWN, REPLACEMENT_ESCALATED, REPLACEMENT_HANDED_OVER, REPLACEMENT_REDRAWN, STOCK_RECEIVED,
    STOCK_SOLD, STOCK_WRITTEN_OFF, TOP_UP_RECORDED, USAGE_RECORDED,
)
from services.common.timefmt import parse_rfc3339

CARD_STREAM_PREFIX = "cards-card-"
OUTLET_STREAM_PREFIX = "cards-outlet-"

# C.STATES. "unknown" is a serial the registry has never seen issued.
UNKNOWN = "unknown"
ISSUED = "issued"
ACTIVE = "active"
EXHAUSTED = "exhausted"
BLOCKED = "blocked"
EXPIRED = "expired"
VOID = "void"

def card_stream(serial: str) -> str:
    return f"{CARD_STREAM_PREFIX}{serial}"


def outlet_stream(outlet_id: str) -> str:
    return f"{OUTLET_STREAM_PREFIX}{outlet_id}"


def money(amount_minor: int, currency: str) -> dict:
    return {"amountMinor": amount_minor, "currency": currency}


def _time(text: str | None) -> datetime | None:
    return parse_rfc3339(text) if text else None


@dataclass(frozen=True)
class CardState:
    serial: str
    status: str = UNKNOWN
    outlet_id: str | None = None  # the outlet the card was issued to (its stock until activated)
    batch_id: str | None = None
    face_value: int = 0
    currency: str = "CNY"
    expires_at: datetime | None = None
    balance: int = 0  # remaining value, fen
    used_total: int = 0  # value ever consumed from this card (bounds a fault credit)
    replaces: str | None = None  # the card this one replaced, if it was handed out as a replacement
    replacement: dict | None = None  # once void: the CardReplaced payload (C.ONCE returns it)

    def expired_at(self, moment: datetime) -> bool:
        """Past its expiry date while still in a state that expires (issued, active, exhausted)."""
        return (
            self.expires_at is not None
            and self.expires_at <= moment
            and self.status in (ISSUED, ACTIVE, EXHAUSTED)
        )


@dataclass(frozen=True)
class StockItem:
    face_value: int
    currency: str
    batch_id: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Pending:
    """A replacement drawn at this outlet whose new card is not activated yet: value in transit."""

    complaint_id: str
    old_serial: str
    old_face_value: int
    new_serial: str | None  # None: escalated, waiting for stock
    value: int
    currency: str


# Removing a card from stock adds it to a small overlay; every this many removals the overlay is
# folded into a new stock dict. Removal stays cheap on outlets holding thousands of cards, and
# the compaction points depend only on the decisions, so a replay builds the same state.
COMPACT_AFTER = 128


@dataclass(frozen=True)
class OutletState:
    outlet_id: str
    # Cards issued to the outlet, in arrival order (the newest is drawn first: the least likely
    # to have been sold or mislaid in the meantime), less those in `gone`.
    received: dict[str, StockItem] = field(default_factory=dict)
    gone: frozenset[str] = frozenset()  # received, no longer in stock (always a subset of received)
    pending: dict[str, Pending] = field(default_factory=dict)  # complaint id -> in transit

    def in_stock(self, serial: str) -> bool:
        return serial in self.received and serial not in self.gone

    def item(self, serial: str) -> StockItem:
        return self.received[serial]

    def newest_first(self):
        for serial in reversed(self.received):
            if serial not in self.gone:
                yield serial, self.received[serial]

    def serials(self) -> list[str]:
        return [serial for serial in self.received if serial not in self.gone]

    def pending_for(self, serial: str) -> Pending | None:
        for pending in self.pending.values():
            if pending.new_serial == serial:
                return pending
        return None

    def on_hand(self) -> int:
        return len(self.received) - len(self.gone)

    def without(self, serial: str | None) -> OutletState:
        if serial is None or not self.in_stock(serial):
            return self
        gone = self.gone | {serial}
        if len(gone) < COMPACT_AFTER:
            return replace(self, gone=gone)
        return replace(self, received={k: v for k, v in self.received.items() if k not in gone}, gone=frozenset())


def initial_state(stream_id: str) -> CardState | OutletState | None:
    if stream_id.startswith(CARD_STREAM_PREFIX):
        return CardState(serial=stream_id[len(CARD_STREAM_PREFIX):])
    if stream_id.startswith(OUTLET_STREAM_PREFIX):
        return OutletState(outlet_id=stream_id[len(OUTLET_STREAM_PREFIX):])
    return None


def evolve(state: Any, decision: dict) -> Any:
    """Fold one decision envelope into the state of the stream it was appended to."""
    return apply(state, decision["decisionType"], decision["payload"])


def apply(state: Any, kind: str, body: dict) -> Any:
    """Fold one decision (type and payload) into a card's or an outlet's state. Decisions that
    change neither (refusals, alerts, referrals) leave it as it is."""
    fold = _FOLDS.get(type(state), {}).get(kind)
    return fold(state, body) if fold is not None else state


# --- a card's stream (C.STATES) -----------------------------------------------------------

def _issued(card: CardState, body: dict) -> CardState:
    return replace(
        card, status=ISSUED, outlet_id=body["outletId"], batch_id=body["batchId"],
        face_value=body["faceValue"]["amountMinor"], currency=body["faceValue"]["currency"],
        expires_at=_time(body.get("expiresAt")),
    )


def _activated(card: CardState, body: dict) -> CardState:
    balance = body["balanceAfter"]["amountMinor"]
    return replace(
        card, status=ACTIVE if balance > 0 else EXHAUSTED, balance=balance,
        expires_at=_time(body.get("expiresAt")), replaces=body.get("replacesCardSerial"),
    )


def _used(card: CardState, body: dict) -> CardState:
    balance = body["balanceAfter"]["amountMinor"]
    return replace(
        card, balance=balance, used_total=card.used_total + body["amount"]["amountMinor"],
        status=ACTIVE if balance > 0 else EXHAUSTED,
    )


def _topped_up(card: CardState, body: dict) -> CardState:
    balance = body["balanceAfter"]["amountMinor"]
    return replace(
        card, balance=balance, status=ACTIVE if balance > 0 else EXHAUSTED,
        expires_at=_time(body.get("expiresAt")),
    )


def _blocked(card: CardState, body: dict) -> CardState:
    return replace(card, status=BLOCKED)


def _expired(card: CardState, body: dict) -> CardState:
    return replace(card, status=EXPIRED, balance=0)


def _replaced(card: CardState, body: dict) -> CardState:
    return replace(card, status=VOID, balance=0, replacement=dict(body))


_CARD_FOLDS = {
    CARD_ISSUED: _issued,
    CARD_ACTIVATED: _activated,
    REPLACEMENT_CARD_ACTIVATED: _activated,
    USAGE_RECORDED: _used,
    TOP_UP_RECORDED: _topped_up,
    CARD_BLOCKED: _blocked,
    CARD_EXPIRED: _expired,
    CARD_REPLACED: _replaced,
}


# --- an outlet's stream (C.STOCK) ---------------------------------------------------------

def _without(mapping: dict, key) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def _stock_received(outlet: OutletState, body: dict) -> OutletState:
    face = body["faceValue"]
    item = StockItem(face["amountMinor"], face["currency"], body["batchId"], _time(body.get("expiresAt")))
    received = {k: v for k, v in outlet.received.items() if k not in outlet.gone}
    received.update(dict.fromkeys(body["cardSerials"], item))
    return replace(outlet, received=received, gone=frozenset())


def _stock_left(outlet: OutletState, body: dict) -> OutletState:
    return outlet.without(body["cardSerial"])


def _replacement_drawn(outlet: OutletState, body: dict) -> OutletState:
    pending = Pending(
        complaint_id=body["complaintId"], old_serial=body["oldCardSerial"],
        old_face_value=body["oldFaceValue"]["amountMinor"], new_serial=body["newCardSerial"],
        value=body["transferredValue"]["amountMinor"], currency=body["transferredValue"]["currency"],
    )
    return replace(outlet.without(body["newCardSerial"]), pending={**outlet.pending, pending.complaint_id: pending})


def _replacement_moved(outlet: OutletState, body: dict) -> OutletState:
    """Redrawn (another stock card) or escalated (none left): the pending replacement's new card."""
    complaint = body["complaintId"]
    new_serial = body.get("newCardSerial")
    pending = replace(outlet.pending[complaint], new_serial=new_serial)
    return replace(outlet.without(new_serial), pending={**outlet.pending, complaint: pending})


def _replacement_handed_over(outlet: OutletState, body: dict) -> OutletState:
    return replace(outlet, pending=_without(outlet.pending, body["complaintId"]))


_OUTLET_FOLDS = {
    STOCK_RECEIVED: _stock_received,
    STOCK_SOLD: _stock_left,
    STOCK_WRITTEN_OFF: _stock_left,
    REPLACEMENT_DRAWN: _replacement_drawn,
    REPLACEMENT_REDRAWN: _replacement_moved,
    REPLACEMENT_ESCALATED: _replacement_moved,
    REPLACEMENT_HANDED_OVER: _replacement_handed_over,
}

# State type -> decision type -> fold. A stream no cards rule knows (initial_state None) has none.
_FOLDS: dict[type, dict] = {CardState: _CARD_FOLDS, OutletState: _OUTLET_FOLDS}
