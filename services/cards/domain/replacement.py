"""Replacement stock on an outlet's stream: C.STOCK and C.REPLACE_NOW.

Which stock card a replacement draws, another one when the drawn card turns out unusable or
stock arrives for a replacement that had none, and the write-off of a stock card that became
unusable.
"""
from __future__ import annotations

from datetime import timedelta

from schemas.decision_types.cards import REPLACEMENT_ESCALATED, REPLACEMENT_REDRAWN, STOCK_WRITTEN_OFF
from .draft import Draft, expiry
from .policy import CardsPolicy
from .rule_ids import REPLACE_NOW, STOCK
from .state import OutletState, Pending, money


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


def redraw(d: Draft, stream: str, pending: Pending, reason: str) -> None:
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
        "newCardBatchId": item.batch_id, "newCardExpiresAt": expiry(item.expires_at),
    }, (reason,))


def leave_stock(d: Draft, serial: str, reason: str) -> None:
    """A card the loaded outlet may still count as stock became unusable (blocked, expired)."""
    stream = d.outlet_stream
    if stream is None:
        return  # the outlet's view catches up when the card is next drawn and refused
    outlet: OutletState = d.states[stream]
    pending = outlet.pending_for(serial)
    if pending is not None:
        redraw(d, stream, pending, reason)
    elif outlet.in_stock(serial):
        d.add(stream, STOCK_WRITTEN_OFF, "writtenOff", (STOCK,), {"cardSerial": serial}, (reason,))
