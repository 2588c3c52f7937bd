"""Complaints at an outlet's counter (cards.complaint.v1): C.REPLACE_NOW, C.ONCE,
C.NOT_ELIGIBLE, C.STOCK and C.DISPOSAL.

An eligible card is replaced at once from the outlet's stock, with its remaining value and any
fault credit; a card already replaced returns its original replacement; an ineligible card is
referred; an outlet without stock escalates and raises an alert.
"""
from __future__ import annotations

from services.common.timefmt import rfc3339

from schemas.decision_types.cards import (
    CARD_REPLACED, COMPLAINT_ESCALATED, COMPLAINT_REFERRED, REPLACEMENT_DRAWN, REPLACEMENT_RETURNED, STOCK_ALERT,
)
from .draft import STATUS_REASON, Draft, check_currency, expiry
from .inventory import expire_if_due
from .policy import CardsPolicy
from .replacement import choose_stock_card
from .rule_ids import DISPOSAL, NOT_ELIGIBLE, ONCE, REPLACE_NOW, STOCK
from .state import ACTIVE, UNKNOWN, VOID, CardState, OutletState, money


def on_complaint(d: Draft) -> None:
    p = d.payload
    base = {"complaintId": p["complaintId"], "cardSerial": p["cardSerial"], "outletId": p["outletId"],
            "problem": p["problem"], "chargeRelated": p["chargeRelated"]}
    if d.card.status == VOID:
        return _return_original(d, base)
    if d.card.status != UNKNOWN:
        expire_if_due(d)
    card = d.card
    reasons = _ineligibility(card, p, d.policy)
    if reasons:  # C.NOT_ELIGIBLE
        d.add(d.card_stream, COMPLAINT_REFERRED, "referred", (NOT_ELIGIBLE,), {
            **base, "status": card.status, "remainingValue": money(card.balance, card.currency),
        }, reasons)
        return
    # Valued before stock is looked at: a claim in another currency is rejected even when the
    # outlet has nothing to replace with.
    credit = fault_credit(card, p.get("wronglyConsumed"), d.policy)
    outlet: OutletState = d.states[d.outlet_stream]
    pick = choose_stock_card(outlet, card.face_value, d.at, d.policy)
    if pick is None:
        return _escalate(d, base, card, outlet)
    _replace(d, card, outlet, pick, credit)


def _return_original(d: Draft, base: dict) -> None:
    """C.ONCE: a voided card's complaint returns the original replacement, never a second card."""
    original = d.card.replacement
    d.add(d.card_stream, REPLACEMENT_RETURNED, "alreadyReplaced", (ONCE,), {
        **base, "originalComplaintId": original["complaintId"], "newCardSerial": original["newCardSerial"],
        "replacedAtOutletId": original["outletId"], "replacedAt": original["replacedAt"],
        "transferredValue": original["transferredValue"],
    }, ("alreadyReplaced",))


def _ineligibility(card: CardState, complaint: dict, policy: CardsPolicy) -> tuple[str, ...]:
    """C.NOT_ELIGIBLE: why the card is not replaced; empty when it is."""
    reasons = []
    if card.status != ACTIVE:
        reasons.append(STATUS_REASON[card.status])
    if not complaint["chargeRelated"]:
        reasons.append("notChargeRelated")
    if complaint["problem"] not in policy.replaceable_problems:
        reasons.append("problemNotReplaceable")
    return tuple(reasons)


def _escalate(d: Draft, base: dict, card: CardState, outlet: OutletState) -> None:
    """C.STOCK: nothing to replace with; the old card stays as it is."""
    p = d.payload
    d.add(d.card_stream, COMPLAINT_ESCALATED, "escalated", (STOCK,), {
        **base, "remainingValue": money(card.balance, card.currency), "wronglyConsumed": p.get("wronglyConsumed"),
    }, ("noStock",))
    d.add(d.outlet_stream, STOCK_ALERT, "alert", (STOCK,), {
        "outletId": p["outletId"], "complaintId": p["complaintId"], "cardSerial": card.serial,
        "faceValue": money(card.face_value, card.currency), "onHand": outlet.on_hand(),
    }, ("noStock",))


def _replace(d: Draft, card: CardState, outlet: OutletState, pick: str,
             credit: tuple[int, tuple[str, ...], dict | None]) -> None:
    """C.REPLACE_NOW: the old card is voided and the stock card drawn, in one decision set."""
    p = d.payload
    credit_minor, credit_reasons, referred_credit = credit
    value = money(card.balance + credit_minor, card.currency)
    d.add(d.card_stream, CARD_REPLACED, "replaced", (REPLACE_NOW, ONCE, DISPOSAL), {
        "complaintId": p["complaintId"], "oldCardSerial": card.serial, "newCardSerial": pick,
        "outletId": p["outletId"], "problem": p["problem"], "replacedAt": rfc3339(d.at),
        "remainingValue": money(card.balance, card.currency), "wronglyConsumed": money(credit_minor, card.currency),
        "faultCreditReferred": referred_credit, "transferredValue": value,
        "oldFaceValue": money(card.face_value, card.currency),
        # C.DISPOSAL: the voided card stays at this outlet for destruction and reconciliation
        "disposal": {"outletId": p["outletId"], "cardSerial": card.serial, "batchId": card.batch_id},
    }, credit_reasons)
    item = outlet.item(pick)
    d.add(d.outlet_stream, REPLACEMENT_DRAWN, "drawn", (REPLACE_NOW, STOCK), {
        "complaintId": p["complaintId"], "oldCardSerial": card.serial, "newCardSerial": pick,
        "oldFaceValue": money(card.face_value, card.currency), "transferredValue": value,
        "newCardFaceValue": money(item.face_value, item.currency), "newCardBatchId": item.batch_id,
        "newCardExpiresAt": expiry(item.expires_at),
    }, credit_reasons)


def fault_credit(card: CardState, claimed: dict | None, policy: CardsPolicy) -> tuple[int, tuple[str, ...], dict | None]:
    """Value the fault wrongly consumed, added to the replacement when the complaint shows it.

    Never more than the card ever consumed (no value out of nothing) nor the policy's limit; a
    larger claim is referred, and the card is replaced at once with its remaining value."""
    if not claimed or claimed["amountMinor"] == 0:
        return 0, (), None
    check_currency(card, claimed, "wronglyConsumed")
    amount = claimed["amountMinor"]
    if amount > card.used_total:
        return 0, ("faultCreditReferred", "faultCreditAboveUsage"), claimed
    if amount > policy.max_fault_credit_minor:
        return 0, ("faultCreditReferred", "faultCreditAboveLimit"), claimed
    return amount, ("faultCredited",), None
