"""A card's life from the inventory feed (cards.inventory.v1): C.STATES and C.VOID_IS_FINAL.

Batches issued to an outlet, activation (a sale, or a replacement handed over at the counter),
usage and top-ups, blocking and expiry. One handler per inventory action (``ACTIONS``).
"""
from __future__ import annotations

from services.common.decider import Rejected

from schemas.decision_types.cards import (
    ACTIVATION_IGNORED, ACTIVATION_REFUSED, CARD_ACTIVATED, CARD_BLOCKED, CARD_EXPIRED, CARD_ISSUED,
    INVENTORY_EVENT_IGNORED, REPLACEMENT_CARD_ACTIVATED, REPLACEMENT_HANDED_OVER, STOCK_RECEIVED, STOCK_SOLD,
    TOP_UP_RECORDED, TOP_UP_REFUSED, USAGE_RECORDED, USAGE_REFUSED, VOID_CARD_USE_REFUSED,
)
from .draft import STATUS_REASON, Draft, check_currency, expiry
from .replacement import leave_stock, redraw
from .rule_ids import REPLACE_NOW, STATES, STOCK, VOID_IS_FINAL
from .state import ACTIVE, BLOCKED, EXHAUSTED, EXPIRED, ISSUED, UNKNOWN, VOID, OutletState, card_stream, money, outlet_stream

# An event that changes a card no batch has issued (batches are keyed by batchId, so one may
# arrive after its cards' events): dead-lettered, to be replayed once the batch is in.
UNKNOWN_CARD = ("payload.cardSerial is not in the card registry (no batchIssued yet?); "
                "replay this event once its batch is issued")
# At most this many refused serials are listed in a StockReceived decision (the count is exact).
MAX_LISTED_REJECTIONS = 100


def expire_if_due(d: Draft) -> None:
    """C.STATES: a card past its expiry date expires at the first event that finds it so."""
    card = d.card
    if not card.expired_at(d.at):
        return
    d.add(d.card_stream, CARD_EXPIRED, "expired", (STATES,), {
        "cardSerial": card.serial, "forfeitedValue": money(card.balance, card.currency),
        "expiresAt": expiry(card.expires_at), "previousStatus": card.status,
    }, ("pastExpiresAt",))
    if card.status == ISSUED:
        leave_stock(d, card.serial, "cardExpired")


def _batch_issued(d: Draft) -> None:
    p = d.payload
    stream = outlet_stream(p["outletId"])
    accepted, rejected, seen = [], [], set()
    for serial in p["cardSerials"]:
        if serial in seen:
            rejected.append({"cardSerial": serial, "reason": "duplicateInBatch"})
        elif d.states[card_stream(serial)].status != UNKNOWN:
            rejected.append({"cardSerial": serial, "reason": "alreadyIssued"})
        else:
            accepted.append(serial)
        seen.add(serial)
    expires = expiry(p.get("expiresAt"))
    d.add(stream, STOCK_RECEIVED, "received" if accepted else "refused", (STOCK, STATES), {
        "batchId": p["batchId"], "outletId": p["outletId"], "faceValue": p["faceValue"], "expiresAt": expires,
        "cardSerials": accepted, "acceptedCount": len(accepted), "rejectedCount": len(rejected),
        "rejected": rejected[:MAX_LISTED_REJECTIONS],
    }, tuple(sorted({r["reason"] for r in rejected})))
    for serial in accepted:
        d.add(card_stream(serial), CARD_ISSUED, "issued", (STATES,), {
            "cardSerial": serial, "batchId": p["batchId"], "outletId": p["outletId"],
            "faceValue": p["faceValue"], "expiresAt": expires,
        })
    outlet: OutletState = d.states[stream]
    for pending in [q for q in outlet.pending.values() if q.new_serial is None]:
        redraw(d, stream, pending, "stockArrived")


def _void_refused(d: Draft) -> None:
    """C.VOID_IS_FINAL: a voided card is never used, topped up or activated again."""
    card, p = d.card, d.payload
    replacement = card.replacement or {}
    d.add(d.card_stream, VOID_CARD_USE_REFUSED, "fraudAlert", (VOID_IS_FINAL,), {
        "cardSerial": card.serial, "action": p["action"], "amount": p.get("amount"),
        "attemptOutletId": p.get("outletId"),
        "replacedByCardSerial": replacement.get("newCardSerial"),
        "replacementComplaintId": replacement.get("complaintId"),
        "voidedAtOutletId": replacement.get("outletId"),
    }, ("cardVoid",))


def _refuse(d: Draft, kind: str, reason: str) -> None:
    card, p = d.card, d.payload
    d.add(d.card_stream, kind, "refused", (STATES,), {
        "cardSerial": card.serial, "action": p["action"], "amount": p.get("amount"), "status": card.status,
    }, (reason,))


def _activated(d: Draft) -> None:
    if d.card.status == UNKNOWN:
        raise Rejected(STATES, UNKNOWN_CARD)
    if d.card.status == VOID:
        return _void_refused(d)
    expire_if_due(d)
    card = d.card
    if card.status in (ACTIVE, EXHAUSTED):
        d.add(d.card_stream, ACTIVATION_IGNORED, "ignored", (STATES,),
              {"cardSerial": card.serial, "status": card.status}, ("alreadyActive",))
        return
    if card.status in (BLOCKED, EXPIRED):
        _refuse(d, ACTIVATION_REFUSED, STATUS_REASON[card.status])
        leave_stock(d, card.serial, STATUS_REASON[card.status])
        return
    _activate_from_stock(d)


def _activate_from_stock(d: Draft) -> None:
    """An issued card leaves its outlet's stock: sold, or handed out as a replacement."""
    card, p = d.card, d.payload
    if p.get("outletId") != card.outlet_id:
        raise Rejected(STOCK, "payload.outletId must name the outlet holding the card in stock to activate it")
    stream = d.outlet_stream
    outlet: OutletState = d.states[stream]
    expires = expiry(p.get("expiresAt") or card.expires_at)
    face = money(card.face_value, card.currency)
    pending = outlet.pending_for(card.serial)
    if pending is not None:  # C.REPLACE_NOW: the replacement is activated at the counter
        value = money(pending.value, pending.currency)
        d.add(d.card_stream, REPLACEMENT_CARD_ACTIVATED, "activated", (REPLACE_NOW, STATES), {
            "cardSerial": card.serial, "outletId": card.outlet_id, "faceValue": face,
            "replacesCardSerial": pending.old_serial, "complaintId": pending.complaint_id,
            "balanceAfter": value, "expiresAt": expires,
        })
        d.add(stream, REPLACEMENT_HANDED_OVER, "handedOver", (REPLACE_NOW,), {
            "complaintId": pending.complaint_id, "oldCardSerial": pending.old_serial,
            "newCardSerial": card.serial, "transferredValue": value,
        })
        return
    d.add(d.card_stream, CARD_ACTIVATED, "activated", (STATES,), {
        "cardSerial": card.serial, "outletId": card.outlet_id, "faceValue": face,
        "balanceAfter": face, "expiresAt": expires,
    })
    d.add(stream, STOCK_SOLD, "sold", (STOCK,), {"cardSerial": card.serial, "faceValue": face})


def _used(d: Draft) -> None:
    _value_change(d, USAGE_RECORDED, USAGE_REFUSED, sign=-1)


def _topped_up(d: Draft) -> None:
    _value_change(d, TOP_UP_RECORDED, TOP_UP_REFUSED, sign=+1)


def _value_change(d: Draft, accepted: str, refused: str, sign: int) -> None:
    if d.card.status == VOID:
        return _void_refused(d)
    if d.card.status == UNKNOWN:
        return _refuse(d, refused, "unknownCard")
    expire_if_due(d)
    card, p = d.card, d.payload
    if card.status not in (ACTIVE, EXHAUSTED):
        return _refuse(d, refused, STATUS_REASON[card.status])
    check_currency(card, p["amount"], "amount")
    amount = p["amount"]["amountMinor"]
    if sign < 0 and amount > card.balance:
        return _refuse(d, refused, "insufficientValue")  # never value out of nothing
    body = {"cardSerial": card.serial, "amount": p["amount"], "balanceAfter": money(card.balance + sign * amount, card.currency)}
    if sign > 0:
        body["expiresAt"] = expiry(p.get("expiresAt") or card.expires_at)  # a top-up may extend validity
    d.add(d.card_stream, accepted, "accepted", (STATES,), body)


def _blocked(d: Draft) -> None:
    _end_of_life(d, CARD_BLOCKED, "blocked", "cardBlocked")


def _expired(d: Draft) -> None:
    _end_of_life(d, CARD_EXPIRED, "expired", "cardExpired")


def _end_of_life(d: Draft, kind: str, outcome: str, reason: str) -> None:
    if d.card.status == UNKNOWN:
        raise Rejected(STATES, UNKNOWN_CARD)
    if kind == CARD_BLOCKED:  # an expired event needs no separate expiry check first
        expire_if_due(d)
    card = d.card
    if card.status not in (ISSUED, ACTIVE, EXHAUSTED):
        d.add(d.card_stream, INVENTORY_EVENT_IGNORED, "ignored", (STATES,),
              {"cardSerial": card.serial, "action": d.payload["action"], "status": card.status},
              (STATUS_REASON[card.status],))
        return
    value = money(card.balance, card.currency)
    body = {"cardSerial": card.serial, "previousStatus": card.status}
    body.update({"frozenValue": value} if kind == CARD_BLOCKED else {"forfeitedValue": value, "expiresAt": expiry(card.expires_at)})
    d.add(d.card_stream, kind, outcome, (STATES,), body)
    if card.status == ISSUED:
        leave_stock(d, card.serial, reason)


# The inventory feed's actions, by payload.action (the schema admits no other).
ACTIONS = {
    "batchIssued": _batch_issued,
    "activated": _activated,
    "used": _used,
    "toppedUp": _topped_up,
    "blocked": _blocked,
    "expired": _expired,
}


def on_inventory(d: Draft) -> None:
    ACTIONS[d.payload["action"]](d)
