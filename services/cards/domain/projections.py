"""Read models derived from the stored cards decisions alone. Pure: the same decisions, in the
same (global) order, always give the same projections (A.REPLAY), so finance can drop and rebuild
them from the log at any time.

- ``disposal_list``: voided cards per outlet, for destruction and reconciliation (C.DISPOSAL).
- ``outlet_stock``: cards on hand per outlet and face value (C.STOCK). On hand = issued to the
  outlet (batchIssued) and not yet activated, drawn as a replacement, blocked or expired.
- ``value_ledger``: value on cards, value in transit between a voided card and its replacement's
  activation, and the flows that explain them, so that "nothing created, nothing lost" can be
  checked: on cards + in transit = sold + topped up - used - forfeited + fault credits.

Each takes an iterable of decision envelopes (the ``payload`` column of ``events``, or the
messages on ``cards.decisions.v1``) and ignores other services' decisions.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.decision_types import cards as types
from services.common.timefmt import parse_rfc3339

from . import state as s


@dataclass(frozen=True)
class ValueLedger:
    on_cards: int  # remaining value on every card, blocked ones included (frozen, not lost)
    in_transit: int  # carried by a voided card, its replacement not activated yet
    sold: int  # face value of cards activated as sales
    topped_up: int
    used: int
    forfeited: int  # value on cards that expired
    fault_credits: int  # value a fault wrongly consumed, given back on replacement
    frozen: int  # part of on_cards that sits on blocked cards

    @property
    def balanced(self) -> bool:
        return self.on_cards + self.in_transit == self.sold + self.topped_up - self.used - self.forfeited + self.fault_credits


class CardsProjection:
    """Folds cards decisions one at a time; the functions below are its one-shot forms."""

    def __init__(self) -> None:
        self.home: dict[str, str] = {}  # serial -> outlet it was issued to
        self.face: dict[str, int] = {}
        self.expires: dict[str, datetime | None] = {}
        self.status: dict[str, str] = {}
        self.balance: dict[str, int] = {}
        self.drawn: set[str] = set()  # handed out (or set aside) as a replacement
        self.in_transit: dict[str, int] = {}  # complaint id -> value
        self.disposal: dict[str, dict] = {}  # complaint id -> disposal row
        self.flows = {"sold": 0, "topped_up": 0, "used": 0, "forfeited": 0, "fault_credits": 0}

    def apply(self, decision: dict) -> None:
        if decision.get("service") != "cards":
            return
        kind, body = decision["decisionType"], decision["payload"]
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, body)

    def ledger(self) -> ValueLedger:
        return ValueLedger(
            on_cards=sum(self.balance.values()),
            in_transit=sum(self.in_transit.values()),
            frozen=sum(v for serial, v in self.balance.items() if self.status.get(serial) == s.BLOCKED),
            **self.flows,
        )

    def stock(self, at: datetime | None = None) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for serial, outlet in self.home.items():
            if self.status.get(serial) != s.ISSUED or serial in self.drawn:
                continue
            expires = self.expires.get(serial)
            if at is not None and expires is not None and expires <= at:
                continue
            faces = out.setdefault(outlet, {})
            faces[self.face[serial]] = faces.get(self.face[serial], 0) + 1
        return {outlet: dict(sorted(faces.items())) for outlet, faces in sorted(out.items())}

    def disposals(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for row in self.disposal.values():
            out.setdefault(row["outletId"], []).append(dict(row))
        return {o: sorted(rows, key=lambda r: (r["voidedAt"], r["cardSerial"])) for o, rows in sorted(out.items())}


def _minor(value: dict | None) -> int:
    return value["amountMinor"] if value else 0


def _issued(p: CardsProjection, body: dict) -> None:
    serial = body["cardSerial"]
    p.home[serial] = body["outletId"]
    p.face[serial] = body["faceValue"]["amountMinor"]
    p.expires[serial] = parse_rfc3339(body["expiresAt"]) if body.get("expiresAt") else None
    p.status[serial] = s.ISSUED
    p.balance[serial] = 0


def _activated(p: CardsProjection, body: dict) -> None:
    serial = body["cardSerial"]
    p.balance[serial] = _minor(body["balanceAfter"])
    p.status[serial] = s.ACTIVE
    p.flows["sold"] += _minor(body["balanceAfter"])


def _replacement_activated(p: CardsProjection, body: dict) -> None:
    serial = body["cardSerial"]
    p.balance[serial] = _minor(body["balanceAfter"])
    p.status[serial] = s.ACTIVE
    p.in_transit.pop(body["complaintId"], None)


def _used(p: CardsProjection, body: dict) -> None:
    p.balance[body["cardSerial"]] = _minor(body["balanceAfter"])
    p.flows["used"] += _minor(body["amount"])


def _topped_up(p: CardsProjection, body: dict) -> None:
    p.balance[body["cardSerial"]] = _minor(body["balanceAfter"])
    p.flows["topped_up"] += _minor(body["amount"])


def _blocked(p: CardsProjection, body: dict) -> None:
    p.status[body["cardSerial"]] = s.BLOCKED


def _expired(p: CardsProjection, body: dict) -> None:
    serial = body["cardSerial"]
    p.status[serial] = s.EXPIRED
    p.balance[serial] = 0
    p.flows["forfeited"] += _minor(body["forfeitedValue"])


def _replaced(p: CardsProjection, body: dict) -> None:
    serial = body["oldCardSerial"]
    p.status[serial] = s.VOID
    p.balance[serial] = 0
    p.in_transit[body["complaintId"]] = _minor(body["transferredValue"])
    p.flows["fault_credits"] += _minor(body["wronglyConsumed"])
    disposal = body["disposal"]
    p.disposal[body["complaintId"]] = {
        "outletId": disposal["outletId"], "cardSerial": serial, "batchId": disposal.get("batchId"),
        "complaintId": body["complaintId"], "voidedAt": body["replacedAt"],
        "faceValue": body["oldFaceValue"], "transferredValue": body["transferredValue"],
        "replacedByCardSerial": body["newCardSerial"],
    }


def _drawn(p: CardsProjection, body: dict) -> None:
    if body.get("newCardSerial"):
        p.drawn.add(body["newCardSerial"])
        row = p.disposal.get(body["complaintId"])
        if row is not None:
            row["replacedByCardSerial"] = body["newCardSerial"]


_HANDLERS = {
    types.CARD_ISSUED: _issued,
    types.CARD_ACTIVATED: _activated,
    types.REPLACEMENT_CARD_ACTIVATED: _replacement_activated,
    types.USAGE_RECORDED: _used,
    types.TOP_UP_RECORDED: _topped_up,
    types.CARD_BLOCKED: _blocked,
    types.CARD_EXPIRED: _expired,
    types.CARD_REPLACED: _replaced,
    types.REPLACEMENT_DRAWN: _drawn,
    types.REPLACEMENT_REDRAWN: _drawn,
}


def project(decisions: Iterable[dict]) -> CardsProjection:
    projection = CardsProjection()
    for decision in decisions:
        projection.apply(decision)
    return projection


def disposal_list(decisions: Iterable[dict]) -> dict[str, list[dict]]:
    """C.DISPOSAL: outlet id -> voided cards held there for destruction, oldest first."""
    return project(decisions).disposals()


def outlet_stock(decisions: Iterable[dict], at: datetime | None = None) -> dict[str, dict[int, int]]:
    """C.STOCK: outlet id -> {face value in fen: cards on hand}; with `at`, cards already
    past their expiry date at that time are not counted."""
    return project(decisions).stock(at)


def value_ledger(decisions: Iterable[dict]) -> ValueLedger:
    return project(decisions).ledger()


def card_balances(decisions: Iterable[dict]) -> dict[str, int]:
    """Serial -> remaining value, fen (C.STATES: derived from issue and usage decisions)."""
    return dict(sorted(project(decisions).balance.items()))
