"""Payload schemas of cards' decisions (cards.decisions.v1), as services/cards/domain builds them."""
from __future__ import annotations

from ..fields import Bool, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..cards import CardComplaintPayload, CardInventoryPayload
from .base import DecisionPayload, same_choices


class ActivationIgnored(DecisionPayload):
    """cards.ActivationIgnored."""

    cardSerial = Id()
    status = Text()


class ActivationRefused(DecisionPayload):
    """cards.ActivationRefused."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    amount = Money(optional=True)
    status = Text()


class CardActivated(DecisionPayload):
    """cards.CardActivated."""

    cardSerial = Id()
    outletId = Id()
    faceValue = Money()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class CardBlocked(DecisionPayload):
    """cards.CardBlocked."""

    cardSerial = Id()
    previousStatus = Text()
    frozenValue = Money()


class CardExpired(DecisionPayload):
    """cards.CardExpired."""

    cardSerial = Id()
    previousStatus = Text()
    forfeitedValue = Money()
    expiresAt = Timestamp(optional=True)


class CardIssued(DecisionPayload):
    """cards.CardIssued."""

    cardSerial = Id()
    batchId = Id()
    outletId = Id()
    faceValue = Money()
    expiresAt = Timestamp(optional=True)


class CardReplaced(DecisionPayload):
    """cards.CardReplaced."""

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
    """cards.ComplaintEscalated."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    chargeRelated = Bool()
    remainingValue = Money()
    wronglyConsumed = Money(optional=True)


class ComplaintReferred(DecisionPayload):
    """cards.ComplaintReferred."""

    complaintId = Id()
    cardSerial = Id()
    outletId = Id()
    problem = same_choices(CardComplaintPayload, "problem")
    chargeRelated = Bool()
    status = Text()
    remainingValue = Money()


class InventoryEventIgnored(DecisionPayload):
    """cards.InventoryEventIgnored."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    status = Text()


class ReplacementCardActivated(DecisionPayload):
    """cards.ReplacementCardActivated."""

    cardSerial = Id()
    outletId = Id()
    faceValue = Money()
    replacesCardSerial = Id()
    complaintId = Id()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class ReplacementDrawn(DecisionPayload):
    """cards.ReplacementDrawn."""

    complaintId = Id()
    oldCardSerial = Id()
    newCardSerial = Id()
    oldFaceValue = Money()
    transferredValue = Money()
    newCardFaceValue = Money()
    newCardBatchId = Id()
    newCardExpiresAt = Timestamp(optional=True)


class ReplacementEscalated(DecisionPayload):
    """cards.ReplacementEscalated."""

    complaintId = Id()
    oldCardSerial = Id()
    previousCardSerial = Id()
    transferredValue = Money()
    newCardSerial = Id(optional=True)


class ReplacementHandedOver(DecisionPayload):
    """cards.ReplacementHandedOver."""

    complaintId = Id()
    oldCardSerial = Id()
    newCardSerial = Id()
    transferredValue = Money()


class ReplacementRedrawn(DecisionPayload):
    """cards.ReplacementRedrawn."""

    complaintId = Id()
    oldCardSerial = Id()
    previousCardSerial = Id(optional=True)
    transferredValue = Money()
    newCardSerial = Id()
    newCardFaceValue = Money()
    newCardBatchId = Id()
    newCardExpiresAt = Timestamp(optional=True)


class ReplacementReturned(DecisionPayload):
    """cards.ReplacementReturned."""

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
    """cards.StockAlert."""

    outletId = Id()
    complaintId = Id()
    cardSerial = Id()
    faceValue = Money()
    onHand = Int()


class StockReceived(DecisionPayload):
    """cards.StockReceived."""

    batchId = Id()
    outletId = Id()
    faceValue = Money()
    expiresAt = Timestamp(optional=True)
    cardSerials = ListOf(Id(), max_items=10_000)
    acceptedCount = Int()
    rejectedCount = Int()
    rejected = ListOf(FreeObject(), max_items=10_000)


class StockSold(DecisionPayload):
    """cards.StockSold."""

    cardSerial = Id()
    faceValue = Money()


class StockWrittenOff(DecisionPayload):
    """cards.StockWrittenOff."""

    cardSerial = Id()


class TopUpRecorded(DecisionPayload):
    """cards.TopUpRecorded."""

    cardSerial = Id()
    amount = Money()
    balanceAfter = Money()
    expiresAt = Timestamp(optional=True)


class TopUpRefused(DecisionPayload):
    """cards.TopUpRefused."""

    cardSerial = Id()
    action = same_choices(CardInventoryPayload, "action")
    amount = Money()
    status = Text()


class UsageRecorded(DecisionPayload):
    """cards.UsageRecorded."""

    cardSerial = Id()
    amount = Money()
    balanceAfter = Money()


class UsageRefused(TopUpRefused):
    """cards.UsageRefused."""


class VoidCardUseRefused(DecisionPayload):
    """cards.VoidCardUseRefused."""

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
