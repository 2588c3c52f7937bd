"""Payloads of the cards.* input topics: prepaid phone-card stock and quality complaints (seed art. 14)."""
from __future__ import annotations

from .fields import Bool, Choice, Id, ListOf, Money, StrictSchema, Timestamp, When

CARD_ACTIONS = ("batchIssued", "activated", "used", "toppedUp", "blocked", "expired")


class CardInventoryPayload(StrictSchema):
    """cards.inventory.v1: a change in a card's life (C.STATES), or a batch issued to an outlet."""

    conditional_required = (
        When("action", ("batchIssued",), ("cardSerials", "batchId", "outletId", "faceValue")),
        When("action", tuple(a for a in CARD_ACTIONS if a != "batchIssued"), ("cardSerial",)),
        When("action", ("used", "toppedUp"), ("amount",)),
    )

    action = Choice(CARD_ACTIONS)
    cardSerial = Id("The card; required except on batchIssued.", optional=True)
    cardSerials = ListOf(Id(), "Cards in the batch; required on batchIssued.",
                         min_items=1, max_items=10_000, optional=True)
    batchId = Id("Issue batch; required on batchIssued (and its partition key).", optional=True)
    outletId = Id("Outlet holding the stock; required on batchIssued.", optional=True)
    faceValue = Money("Face value of each card in the batch; required on batchIssued.", optional=True)
    amount = Money("Value consumed (used) or added (toppedUp); required on those actions.", optional=True)
    expiresAt = Timestamp("Card expiry.", optional=True)


class CardComplaintPayload(StrictSchema):
    """cards.complaint.v1: a customer complaint about a card's quality at an outlet (C.REPLACE_NOW)."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id("Outlet that received the complaint and replaces the card.")
    problem = Choice(
        ("chargeDeductedWithoutService", "wrongDeduction", "cardUnreadable", "balanceNotShown", "other")
    )
    chargeRelated = Bool("The problem involves charges (only those are replaced at once).")
    wronglyConsumed = Money("Value the fault wrongly consumed, when the complaint shows it.", optional=True)
    receivedBy = Id("Staff member who received the complaint (first-contact owner).")
