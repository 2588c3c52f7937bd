"""Prepaid-card rules (SPEC.md section 4, seed art. 14): pure functions of (states, input, policy).

Each input loads the streams it may change (see ``stream_ids``) and every decision names the
stream it is appended to. The runtime appends all of one input's decisions in one transaction
with optimistic concurrency on every stream written, so a replacement (old card voided, stock
card drawn) is one atomic decision, and a concurrent writer makes the whole batch decide again
on fresh state.

The rules, by stream: inventory.py (a card's life), replacement.py (an outlet's replacement
stock), complaints.py (replacing a card at the counter).
"""
from __future__ import annotations

from services.common.decider import Decision

from .complaints import on_complaint
from .draft import Draft
from .inventory import on_inventory
from .policy import CardsPolicy
from .state import card_stream, outlet_stream

INVENTORY = "cards.inventory.v1"
COMPLAINT = "cards.complaint.v1"

# Inventory actions that can take a card out of an outlet's stock: when they name the outlet,
# its stream is loaded too, so the stock changes in the same transaction as the card.
STOCK_ACTIONS = ("activated", "blocked", "expired")

# Input topic -> the rules that decide it.
HANDLERS = {INVENTORY: on_inventory, COMPLAINT: on_complaint}


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


def decide(states: dict, event, policy: CardsPolicy) -> list[Decision]:
    draft = Draft(states, event, policy)
    handler = HANDLERS.get(event.event_type)
    if handler is not None:
        handler(draft)
    return draft.decisions
