"""Prepaid-card rules (SPEC.md section 4, seed art. 14): pure functions of (states, input, policy).

Each input loads the streams it may change (see ``stream_ids``) and every decision names the
stream it is appended to. The runtime appends all of one input's decisions in one transaction
with optimistic concurrency on every stream written, so a replacement (old card voided, stock
card drawn) is one atomic decision, and a concurrent writer makes the whole batch decide again
on fresh state.
"""
from __future__ import annotations

from datetime import timedelta

from services.common.decider import Decision, Rejected
from services.common.timefmt import rfc3339

from .policy import CardsPolicy
from .state import (
    ACTIVATION_IGNORED, ACTIVATION_REFUSED, ACTIVE, BLOCKED, CARD_ACTIVATED, CARD_BLOCKED, CARD_EXPIRED,
    CARD_ISSUED, CARD_REPLACED, COMPLAINT_ESCALATED, COMPLAINT_REFERRED, EXHAUSTED, EXPIRED,
    INVENTORY_EVENT_IGNORED, ISSUED, REPLACEMENT_CARD_ACTIVATED, REPLACEMENT_DRAWN, REPLACEMENT_ESCALATED,
    REPLACEMENT_HANDED_OVER, REPLACEMENT_REDRAWN, REPLACEMENT_RETURNED, STOCK_ALERT, STOCK_RECEIVED,
    STOCK_SOLD, STOCK_WRITTEN_OFF, TOP_UP_RECORDED, TOP_UP_REFUSED, UNKNOWN, USAGE_RECORDED, USAGE_REFUSED,
    VOID, VOID_CARD_USE_REFUSED, CardState, OutletState, Pending, apply, card_stream, money, outlet_stream,
)

INVENTORY = "cards.inventory.v1"
COMPLAINT = "cards.complaint.v1"

# SPEC.md section 4 rule ids.
STATES = "C.STATES"
REPLACE_NOW = "C.REPLACE_NOW"
ONCE = "C.ONCE"
VOID_IS_FINAL = "C.VOID_IS_FINAL"
NOT_ELIGIBLE = "C.NOT_ELIGIBLE"
STOCK = "C.STOCK"
DISPOSAL = "C.DISPOSAL"

# Inventory actions that can take a card out of an outlet's stock: when they name the outlet,
# its stream is loaded too, so the stock changes in the same transaction as the card.
STOCK_ACTIONS = ("activated", "blocked", "expired")
# An event that changes a card no batch has issued (batches are keyed by batchId, so one may
# arrive after its cards' events): dead-lettered, to be replayed once the batch is in.
UNKNOWN_CARD = ("payload.cardSerial is not in the card registry (no batchIssued yet?); "
                "replay this event once its batch is issued")
# At most this many refused serials are listed in a StockReceived decision (the count is exact).
MAX_LISTED_REJECTIONS = 100

_STATUS_REASON = {
    UNKNOWN: "unknownCard", ISSUED: "cardNotActivated", EXHAUSTED: "cardExhausted",
    BLOCKED: "cardBlocked", EXPIRED: "cardExpired", VOID: "cardVoid",
}


def stream_ids(event) -> tuple[str, ...]:
    """The streams an input reads and may append to; the first is where it is filed."""
    payload = event.payload
    if event.event_type == COMPLAINT:
        return (card_stream(payload["cardSerial"]), outlet_stream(payload["outletId"]))
    if payload["action"] == "batchIssued":
        cards = dict.fromkeys(card_stream(serial) for serial in payload["cardSerials"])
        return (outlet_stream(payload["outletId"]), *cards)
    streams = (card_stream(payload["cardSerial"]),)
    if payload["action"] in STOCK_ACTIONS and payload.get("outletId"):
        streams += (outlet_stream(payload["outletId"]),)
    return streams


class _Draft:
    """Decisions for one input, each applied to a working copy so later ones see earlier ones."""

    def __init__(self, states: dict, event, policy: CardsPolicy):
        self.states = dict(states)
        self.event = event
        self.payload = event.payload
        self.policy = policy
        self.at = event.event_time
        self.decisions: list[Decision] = []

    def add(self, stream: str, kind: str, outcome: str, rules: tuple[str, ...], payload: dict,
            reasons: tuple[str, ...] = ()) -> None:
        self.decisions.append(
            Decision(decision_type=kind, rule_ids=rules, outcome=outcome, payload=payload,
                     reason_codes=reasons, stream_id=stream)
        )
        self.states[stream] = apply(self.states[stream], kind, payload)

    # the input's card (every input but batchIssued has one)
    @property
    def card_stream(self) -> str:
        return card_stream(self.payload["cardSerial"])

    @property
    def card(self) -> CardState:
        return self.states[self.card_stream]

    @property
    def outlet_stream(self) -> str | None:
        outlet_id = self.payload.get("outletId")
        stream = outlet_stream(outlet_id) if outlet_id else None
        return stream if stream in self.states else None


def decide(states: dict, event, policy: CardsPolicy) -> list[Decision]:
    draft = _Draft(states, event, policy)
    if event.event_type == INVENTORY:
        _INVENTORY[event.payload["action"]](draft)
    elif event.event_type == COMPLAINT:
        _complaint(draft)
    return draft.decisions


def _expiry(moment) -> str | None:
    return rfc3339(moment) if moment is not None else None


def _check_currency(card: CardState, amount: dict, field: str) -> None:
    if amount["currency"] != card.currency:
        raise Rejected(STATES, f"payload.{field}.currency differs from the card's currency")


# --- stock (C.STOCK) ---------------------------------------------------------------------

def choose_stock_card(outlet: OutletState, preferred_face: int, at, policy: CardsPolicy) -> str | None:
    """The stock card to hand out: newest first, of the old card's face value when there is one,
    never one that expires within the policy's minimum validity."""
    horizon = at + timedelta(days=policy.min_replacement_validity_days)
    fallback = None
    for serial, item in outlet.newest_first():
        if item.expires_at is not None and item.expires_at <= horizon:
            continue
        if not policy.prefer_same_face_value or item.face_value == preferred_face:
            return serial
        if fallback is None:
            fallback = serial
    return fallback


def _redraw(d: _Draft, stream: str, pending: Pending, reason: str) -> None:
    """Give a drawn replacement another stock card (its card turned out unusable, or stock
    arrived for one that had none); escalate when there is none (C.STOCK)."""
    outlet: OutletState = d.states[stream]
    pick = choose_stock_card(outlet, pending.old_face_value, d.at, d.policy)
    body = {
        "complaintId": pending.complaint_id,
        "oldCardSerial": pending.old_serial,
        "previousCardSerial": pending.new_serial,
        "transferredValue": money(pending.value, pending.currency),
    }
    if pick is None:
        if pending.new_serial is not None:  # a waiting replacement is not escalated twice
            d.add(stream, REPLACEMENT_ESCALATED, "escalated", (STOCK,), {**body, "newCardSerial": None},
                  (reason, "noStock"))
        return
    item = outlet.item(pick)
    d.add(stream, REPLACEMENT_REDRAWN, "redrawn", (REPLACE_NOW, STOCK), {
        **body, "newCardSerial": pick, "newCardFaceValue": money(item.face_value, item.currency),
        "newCardBatchId": item.batch_id, "newCardExpiresAt": _expiry(item.expires_at),
    }, (reason,))


def _leave_stock(d: _Draft, serial: str, reason: str) -> None:
    """A card the loaded outlet may still count as stock became unusable (blocked, expired)."""
    stream = d.outlet_stream
    if stream is None:
        return  # the outlet's view catches up when the card is next drawn and refused
    outlet: OutletState = d.states[stream]
    pending = outlet.pending_for(serial)
    if pending is not None:
        _redraw(d, stream, pending, reason)
    elif outlet.in_stock(serial):
        d.add(stream, STOCK_WRITTEN_OFF, "writtenOff", (STOCK,), {"cardSerial": serial}, (reason,))


def _expire_if_due(d: _Draft) -> None:
    """C.STATES: a card past its expiry date expires at the first event that finds it so."""
    card = d.card
    if not card.expired_at(d.at):
        return
    d.add(d.card_stream, CARD_EXPIRED, "expired", (STATES,), {
        "cardSerial": card.serial, "forfeitedValue": money(card.balance, card.currency),
        "expiresAt": _expiry(card.expires_at), "previousStatus": card.status,
    }, ("pastExpiresAt",))
    if card.status == ISSUED:
        _leave_stock(d, card.serial, "cardExpired")


# --- inventory (C.STATES, C.VOID_IS_FINAL) -------------------------------------------------

def _batch_issued(d: _Draft) -> None:
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
    expires = _expiry(p.get("expiresAt"))
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
        _redraw(d, stream, pending, "stockArrived")


def _void_refused(d: _Draft) -> None:
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


def _refuse(d: _Draft, kind: str, reason: str) -> None:
    card, p = d.card, d.payload
    d.add(d.card_stream, kind, "refused", (STATES,), {
        "cardSerial": card.serial, "action": p["action"], "amount": p.get("amount"), "status": card.status,
    }, (reason,))


def _activated(d: _Draft) -> None:
    p = d.payload
    if d.card.status == UNKNOWN:
        raise Rejected(STATES, UNKNOWN_CARD)
    if d.card.status == VOID:
        return _void_refused(d)
    _expire_if_due(d)
    card = d.card
    if card.status in (ACTIVE, EXHAUSTED):
        d.add(d.card_stream, ACTIVATION_IGNORED, "ignored", (STATES,),
              {"cardSerial": card.serial, "status": card.status}, ("alreadyActive",))
        return
    if card.status in (BLOCKED, EXPIRED):
        _refuse(d, ACTIVATION_REFUSED, _STATUS_REASON[card.status])
        _leave_stock(d, card.serial, _STATUS_REASON[card.status])
        return
    # issued: the card leaves its outlet's stock, sold or handed out as a replacement
    if p.get("outletId") != card.outlet_id:
        raise Rejected(STOCK, "payload.outletId must name the outlet holding the card in stock to activate it")
    stream = d.outlet_stream
    outlet: OutletState = d.states[stream]
    expires = _expiry(p.get("expiresAt") or card.expires_at)
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


def _used(d: _Draft) -> None:
    _value_change(d, USAGE_RECORDED, USAGE_REFUSED, sign=-1)


def _topped_up(d: _Draft) -> None:
    _value_change(d, TOP_UP_RECORDED, TOP_UP_REFUSED, sign=+1)


def _value_change(d: _Draft, accepted: str, refused: str, sign: int) -> None:
    if d.card.status == VOID:
        return _void_refused(d)
    if d.card.status == UNKNOWN:
        return _refuse(d, refused, "unknownCard")
    _expire_if_due(d)
    card, p = d.card, d.payload
    if card.status not in (ACTIVE, EXHAUSTED):
        return _refuse(d, refused, _STATUS_REASON[card.status])
    _check_currency(card, p["amount"], "amount")
    amount = p["amount"]["amountMinor"]
    if sign < 0 and amount > card.balance:
        return _refuse(d, refused, "insufficientValue")  # never value out of nothing
    body = {"cardSerial": card.serial, "amount": p["amount"], "balanceAfter": money(card.balance + sign * amount, card.currency)}
    if sign > 0:
        body["expiresAt"] = _expiry(p.get("expiresAt") or card.expires_at)  # a top-up may extend validity
    d.add(d.card_stream, accepted, "accepted", (STATES,), body)


def _blocked(d: _Draft) -> None:
    _end_of_life(d, CARD_BLOCKED, "blocked", "cardBlocked")


def _expired(d: _Draft) -> None:
    _end_of_life(d, CARD_EXPIRED, "expired", "cardExpired")


def _end_of_life(d: _Draft, kind: str, outcome: str, reason: str) -> None:
    if d.card.status == UNKNOWN:
        raise Rejected(STATES, UNKNOWN_CARD)
    if kind == CARD_BLOCKED:  # an expired event needs no separate expiry check first
        _expire_if_due(d)
    card = d.card
    if card.status not in (ISSUED, ACTIVE, EXHAUSTED):
        d.add(d.card_stream, INVENTORY_EVENT_IGNORED, "ignored", (STATES,),
              {"cardSerial": card.serial, "action": d.payload["action"], "status": card.status},
              (_STATUS_REASON[card.status],))
        return
    value = money(card.balance, card.currency)
    body = {"cardSerial": card.serial, "previousStatus": card.status}
    body.update({"frozenValue": value} if kind == CARD_BLOCKED else {"forfeitedValue": value, "expiresAt": _expiry(card.expires_at)})
    d.add(d.card_stream, kind, outcome, (STATES,), body)
    if card.status == ISSUED:
        _leave_stock(d, card.serial, reason)


_INVENTORY = {
    "batchIssued": _batch_issued,
    "activated": _activated,
    "used": _used,
    "toppedUp": _topped_up,
    "blocked": _blocked,
    "expired": _expired,
}


# --- complaints (C.REPLACE_NOW, C.ONCE, C.NOT_ELIGIBLE, C.STOCK, C.DISPOSAL) --------------

def _complaint(d: _Draft) -> None:
    p = d.payload
    card = d.card
    base = {"complaintId": p["complaintId"], "cardSerial": p["cardSerial"], "outletId": p["outletId"],
            "problem": p["problem"], "chargeRelated": p["chargeRelated"]}
    if card.status == VOID:  # C.ONCE: the original replacement, never a second card
        original = card.replacement
        d.add(d.card_stream, REPLACEMENT_RETURNED, "alreadyReplaced", (ONCE,), {
            **base, "originalComplaintId": original["complaintId"], "newCardSerial": original["newCardSerial"],
            "replacedAtOutletId": original["outletId"], "replacedAt": original["replacedAt"],
            "transferredValue": original["transferredValue"],
        }, ("alreadyReplaced",))
        return
    if card.status != UNKNOWN:
        _expire_if_due(d)
        card = d.card
    reasons = []
    if card.status != ACTIVE:
        reasons.append(_STATUS_REASON[card.status])
    if not p["chargeRelated"]:
        reasons.append("notChargeRelated")
    if p["problem"] not in d.policy.replaceable_problems:
        reasons.append("problemNotReplaceable")
    if reasons:  # C.NOT_ELIGIBLE
        d.add(d.card_stream, COMPLAINT_REFERRED, "referred", (NOT_ELIGIBLE,), {
            **base, "status": card.status, "remainingValue": money(card.balance, card.currency),
        }, tuple(reasons))
        return

    credit, credit_reasons, referred_credit = _fault_credit(card, p.get("wronglyConsumed"), d.policy)
    transferred = card.balance + credit
    remaining = money(card.balance, card.currency)
    stream = d.outlet_stream
    outlet: OutletState = d.states[stream]
    pick = choose_stock_card(outlet, card.face_value, d.at, d.policy)
    if pick is None:  # C.STOCK: nothing to replace with; the old card stays as it is
        d.add(d.card_stream, COMPLAINT_ESCALATED, "escalated", (STOCK,), {
            **base, "remainingValue": remaining, "wronglyConsumed": p.get("wronglyConsumed"),
        }, ("noStock",))
        d.add(stream, STOCK_ALERT, "alert", (STOCK,), {
            "outletId": p["outletId"], "complaintId": p["complaintId"], "cardSerial": card.serial,
            "faceValue": money(card.face_value, card.currency), "onHand": outlet.on_hand(),
        }, ("noStock",))
        return

    item = outlet.item(pick)
    value = money(transferred, card.currency)
    d.add(d.card_stream, CARD_REPLACED, "replaced", (REPLACE_NOW, ONCE, DISPOSAL), {
        "complaintId": p["complaintId"], "oldCardSerial": card.serial, "newCardSerial": pick,
        "outletId": p["outletId"], "problem": p["problem"], "replacedAt": rfc3339(d.at),
        "remainingValue": remaining, "wronglyConsumed": money(credit, card.currency),
        "faultCreditReferred": referred_credit, "transferredValue": value,
        "oldFaceValue": money(card.face_value, card.currency),
        # C.DISPOSAL: the voided card stays at this outlet for destruction and reconciliation
        "disposal": {"outletId": p["outletId"], "cardSerial": card.serial, "batchId": card.batch_id},
    }, credit_reasons)
    d.add(stream, REPLACEMENT_DRAWN, "drawn", (REPLACE_NOW, STOCK), {
        "complaintId": p["complaintId"], "oldCardSerial": card.serial, "newCardSerial": pick,
        "oldFaceValue": money(card.face_value, card.currency), "transferredValue": value,
        "newCardFaceValue": money(item.face_value, item.currency), "newCardBatchId": item.batch_id,
        "newCardExpiresAt": _expiry(item.expires_at),
    }, credit_reasons)


def _fault_credit(card: CardState, claimed: dict | None, policy: CardsPolicy) -> tuple[int, tuple[str, ...], dict | None]:
    """Value the fault wrongly consumed, added to the replacement when the complaint shows it.

    Never more than the card ever consumed (no value out of nothing) nor the policy's limit; a
    larger claim is referred, and the card is replaced at once with its remaining value."""
    if not claimed or claimed["amountMinor"] == 0:
        return 0, (), None
    _check_currency(card, claimed, "wronglyConsumed")
    amount = claimed["amountMinor"]
    if amount > card.used_total:
        return 0, ("faultCreditReferred", "faultCreditAboveUsage"), claimed
    if amount > policy.max_fault_credit_minor:
        return 0, ("faultCreditReferred", "faultCreditAboveLimit"), claimed
    return amount, ("faultCredited",), None
