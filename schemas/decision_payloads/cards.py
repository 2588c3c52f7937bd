"""Payload schemas of cards' decisions (cards.decisions.v1), as services/cards/domain builds them."""
from __future__ import annotations

from ..fields import Bool, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..cards import CardComplaintPayload, CardInventoryPayload
from .base import DecisionPayload, same_choices


class ActivationIgnored(DecisionPayload):
    """cards.ActivationIgnored: an activation of a card that is already active changes nothing (C.STATES)."""

    cardSerial = Id()
    status = Text()


class ActivationRefused(DecisionPayload):
    """cards.ActivationRefused: a card that cannot be activated in its state, e.g. blocked (C.STATES)."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    amount = Money(optional=True)
    status = Text()


class CardActivated(DecisionPayload):
    """cards.CardActivated: a card sold and activated: its balance is its face value (C.STATES)."""

    cardSerial = Id()
    outletId = Id()
    faceValue = Money()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class CardBlocked(DecisionPayload):
    """cards.CardBlocked: a card blocked; its remaining value is frozen (C.STATES)."""

    cardSerial = Id()
    previousStatus = Text()
    frozenValue = Money()


class CardExpired(DecisionPayload):
    """cards.CardExpired: a card past its expiry; its remaining value is forfeited (C.STATES)."""

    cardSerial = Id()
    previousStatus = Text()
    forfeitedValue = Money()
    expiresAt = Timestamp(optional=True)


class CardIssued(DecisionPayload):
    """cards.CardIssued: a card of an issued batch, in stock at its outlet (C.STATES)."""

    cardSerial = Id()
    batchId = Id()
    outletId = Id()
    faceValue = Money()
    expiresAt = Timestamp(optional=True)


class CardReplaced(DecisionPayload):
    """cards.CardReplaced: a faulty card replaced at once and voided, its value moved to the new card
    (C.REPLACE_NOW, C.ONCE, C.DISPOSAL)."""

    complaintId = Id()
    oldCardSerial = Id()
    newCardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    replacedAt = Timestamp()
    remainingValue = Money()
    wronglyConsumed = Money()
    faultCreditReferred = Money(optional=True)
    transferredValue = Money()
    oldFaceValue = Money()
    disposal = FreeObject()


class ComplaintEscalated(DecisionPayload):
    """cards.ComplaintEscalated: a replacement the outlet cannot make for want of stock, escalated
    (C.STOCK)."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    chargeRelated = Bool()
    remainingValue = Money()
    wronglyConsumed = Money(optional=True)


class ComplaintReferred(DecisionPayload):
    """cards.ComplaintReferred: a complaint not eligible for replacement, referred with the reason
    (C.NOT_ELIGIBLE)."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    chargeRelated = Bool()
    status = Text()
    remainingValue = Money()


class InventoryEventIgnored(DecisionPayload):
    """cards.InventoryEventIgnored: an inventory event for a blocked or void card, ignored (C.STATES)."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    status = Text()


class ReplacementCardActivated(DecisionPayload):
    """cards.ReplacementCardActivated: the new card of a replacement, activated with the transferred value
    (C.REPLACE_NOW)."""

    cardSerial = Id()
    outletId = Id()
    faceValue = Money()
    replacesCardSerial = Id()
    complaintId = Id()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class ReplacementDrawn(DecisionPayload):
    """cards.ReplacementDrawn: the stock card drawn for a replacement, on the outlet's stream
    (C.REPLACE_NOW, C.STOCK)."""

    complaintId = Id()
    oldCardSerial = Id()
    newCardSerial = Id()
    oldFaceValue = Money()
    transferredValue = Money()
    newCardFaceValue = Money()
    newCardBatchId = Id()
    newCardExpiresAt = Timestamp(optional=True)


class ReplacementEscalated(DecisionPayload):
    """cards.ReplacementEscalated: a drawn replacement card that cannot be used, escalated for want of
    another (C.STOCK)."""

    complaintId = Id()
    oldCardSerial = Id()
    previousCardSerial = Id()
    transferredValue = Money()
    newCardSerial = Id(optional=True)


class ReplacementHandedOver(DecisionPayload):
    """cards.ReplacementHandedOver: the replacement card handed to the customer (C.REPLACE_NOW)."""

    complaintId = Id()
    oldCardSerial = Id()
    newCardSerial = Id()
    transferredValue = Money()


class ReplacementRedrawn(DecisionPayload):
    """cards.ReplacementRedrawn: another stock card drawn for a replacement (C.REPLACE_NOW, C.STOCK)."""

    complaintId = Id()
    oldCardSerial = Id()
    previousCardSerial = Id(optional=True)
    transferredValue = Money()
    newCardSerial = Id()
    newCardFaceValue = Money()
    newCardBatchId = Id()
    newCardExpiresAt = Timestamp(optional=True)


class ReplacementReturned(DecisionPayload):
    """cards.ReplacementReturned: a second complaint about a card already replaced: the first replacement
    stands (C.ONCE)."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    chargeRelated = Bool()
    originalComplaintId = Id()
    newCardSerial = Id()
    replacedAtOutletId = Id()
    replacedAt = Timestamp()
    transferredValue = Money()


class StockAlert(DecisionPayload):
    """cards.StockAlert: an outlet out of stock for a replacement (C.STOCK)."""

    outletId = Id()
    complaintId = Id()
    cardSerial = Id()
    faceValue = Money()
    onHand = Int()


class StockReceived(DecisionPayload):
    """cards.StockReceived: a batch of cards received into an outlet's stock, with any serials refused
    (C.STOCK)."""

    batchId = Id()
    outletId = Id()
    faceValue = Money()
    expiresAt = Timestamp(optional=True)
    cardSerials = ListOf(Id(), max_items=10_000)
    acceptedCount = Int()
    rejectedCount = Int()
    rejected = ListOf(FreeObject(), max_items=10_000)


class StockSold(DecisionPayload):
    """cards.StockSold: a stock card sold (C.STOCK)."""

    cardSerial = Id()
    faceValue = Money()


class StockWrittenOff(DecisionPayload):
    """cards.StockWrittenOff: a stock card that can no longer be sold, written off (C.STOCK)."""

    cardSerial = Id()


class TopUpRecorded(DecisionPayload):
    """cards.TopUpRecorded: a top-up added to a card's balance (C.STATES)."""

    cardSerial = Id()
    amount = Money()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class TopUpRefused(DecisionPayload):
    """cards.TopUpRefused: a top-up refused in the card's state (C.STATES)."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    amount = Money()
    status = Text()


class UsageRecorded(DecisionPayload):
    """cards.UsageRecorded: usage deducted from a card's balance (C.STATES)."""

    cardSerial = Id()
    amount = Money()
    balanceAfter = Money()


class UsageRefused(TopUpRefused):
    """cards.UsageRefused: usage refused: unknown, inactive or exhausted card (C.STATES)."""


class VoidCardUseRefused(DecisionPayload):
    """cards.VoidCardUseRefused: any use of a voided (replaced) card, refused with a fraud alert
    (C.VOID_IS_FINAL)."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    amount = Money(optional=True)
    attemptOutletId = Id(optional=True)
    replacedByCardSerial = Id()
    replacementComplaintId = Id()
    voidedAtOutletId = Id()


PAYLOADS = {
    "cards.ActivationIgnored": ActivationIgnored,
    "cards.ActivationRefused": ActivationRefused,
    "cards.CardActivated": CardActivated,
    "cards.CardBlocked": CardBlocked,
    "cards.CardExpired": CardExpired,
    "cards.CardIssued": CardIssued,
    "cards.CardReplaced": CardReplaced,
    "cards.ComplaintEscalated": ComplaintEscalated,
    "cards.ComplaintReferred": ComplaintReferred,
    "cards.InventoryEventIgnored": InventoryEventIgnored,
    "cards.ReplacementCardActivated": ReplacementCardActivated,
    "cards.ReplacementDrawn": ReplacementDrawn,
    "cards.ReplacementEscalated": ReplacementEscalated,
    "cards.ReplacementHandedOver": ReplacementHandedOver,
    "cards.ReplacementRedrawn": ReplacementRedrawn,
    "cards.ReplacementReturned": ReplacementReturned,
    "cards.StockAlert": StockAlert,
    "cards.StockReceived": StockReceived,
    "cards.StockSold": StockSold,
    "cards.StockWrittenOff": StockWrittenOff,
    "cards.TopUpRecorded": TopUpRecorded,
    "cards.TopUpRefused": TopUpRefused,
    "cards.UsageRecorded": UsageRecorded,
    "cards.UsageRefused": UsageRefused,
    "cards.VoidCardUseRefused": VoidCardUseRefused,
}
