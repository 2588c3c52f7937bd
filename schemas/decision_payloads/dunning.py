"""Payload schemas of dunning's decisions (dunning.decisions.v1), as services/dunning/domain builds them."""
from __future__ import annotations

from ..fields import Bool, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..dunning import ReminderDeliveryPayload
from .base import DecisionPayload, same_choices


class BillTracked(DecisionPayload):
    """dunning.BillTracked."""

    accountId = Id()
    billId = Id()
    amountDueMinor = Int()
    creditAppliedMinor = Int()
    paymentDueDate = Timestamp()
    creditLevel = Text()
    customerTier = Text()
    important = Bool()
    accountManagerId = Id(optional=True)


class CreditApplied(DecisionPayload):
    """dunning.CreditApplied."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    creditMinor = Int()


class DeliveryRecorded(DecisionPayload):
    """dunning.DeliveryRecorded."""

    accountId = Id()
    reminderId = Id()
    occurrenceId = Id(optional=True)
    channel = same_choices(ReminderDeliveryPayload, "channel")
    deliveryOutcome = Text()
    delivered = Bool()


class EscalationSkipped(DecisionPayload):
    """dunning.EscalationSkipped."""

    accountId = Id()
    occurrenceId = Id()
    billId = Id()
    firedTimerId = Id()


class HoldApplied(DecisionPayload):
    """dunning.HoldApplied."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    heldMinor = Int()


class HoldReleased(DecisionPayload):
    """dunning.HoldReleased."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    releasedMinor = Int()


class LateFeeCharged(DecisionPayload):
    """dunning.LateFeeCharged."""

    accountId = Id()
    occurrenceId = Id()
    billId = Id()
    feeMinor = Int()
    totalFeeMinor = Int()
    daysOverdue = Int()
    basisMinorDays = Int()
    perMilleDaily = Int()
    rounding = Text()


class OccurrenceClosed(DecisionPayload):
    """dunning.OccurrenceClosed."""

    accountId = Id()
    occurrenceId = Id()
    billId = Id()


class OccurrenceOpened(OccurrenceClosed):
    """dunning.OccurrenceOpened."""

    anchorDate = Timestamp()
    overdueMinor = Int()
    heldMinor = Int()
    offenceCount = Int()
    lookbackMonths = Int()


class OccurrenceReopened(OccurrenceClosed):
    """dunning.OccurrenceReopened."""


class OccurrenceWithdrawn(OccurrenceClosed):
    """dunning.OccurrenceWithdrawn."""

    guardDecisionId = Id(optional=True)
    ticketId = Text(optional=True)


class PaymentApplied(DecisionPayload):
    """dunning.PaymentApplied."""

    accountId = Id()
    paymentId = Id()
    amountMinor = Int()
    allocations = ListOf(FreeObject())
    creditMinor = Int()


class PaymentReversed(DecisionPayload):
    """dunning.PaymentReversed."""

    accountId = Id()
    paymentId = Id()
    creditRemovedMinor = Int()


class ReminderDue(OccurrenceClosed):
    """dunning.ReminderDue."""

    sequence = Int()
    firedTimerId = Id()
    channel = same_choices(ReminderDeliveryPayload, "channel")
    offenceCount = Int()
    overdueMinor = Int()
    accountManagerId = Id(optional=True)


class ReminderScheduled(OccurrenceClosed):
    """dunning.ReminderScheduled."""

    offenceCount = Int()
    sequence = Int()
    channel = same_choices(ReminderDeliveryPayload, "channel")
    voiceAllowed = Bool()
    treatment = Text()
    scheduledFor = Timestamp()


class ReminderSkipped(OccurrenceClosed):
    """dunning.ReminderSkipped."""

    sequence = Int()
    firedTimerId = Id()


class RestorationRequested(DecisionPayload):
    """dunning.RestorationRequested."""

    accountId = Id()
    clearedAt = Timestamp()


class SuspensionAnswered(DecisionPayload):
    """dunning.SuspensionAnswered."""

    accountId = Id()
    billId = Id(optional=True)
    guardDecisionId = Id()
    ticketId = Text(optional=True)
    suspended = Bool()


class SuspensionRequested(EscalationSkipped):
    """dunning.SuspensionRequested."""

    anchorDate = Timestamp()
    daysOverdue = Int()
    overdueMinor = Int()
    heldMinor = Int()
    lateFeeToDateMinor = Int()
    remindersDelivered = Int()
    remindersSent = Int()
    important = Bool()
    offenceCount = Int()


class PaymentReversalIgnored(DecisionPayload):
    """dunning.PaymentReversalIgnored."""

    accountId = Id()
    paymentId = Id()


class RestorationRecorded(DecisionPayload):
    """dunning.RestorationRecorded."""

    accountId = Id()
    billId = Id(optional=True)
    guardDecisionId = Id()
    ticketId = Text(optional=True)


PAYLOADS = {
    "dunning.BillTracked": BillTracked,
    "dunning.CreditApplied": CreditApplied,
    "dunning.DeliveryRecorded": DeliveryRecorded,
    "dunning.EscalationSkipped": EscalationSkipped,
    "dunning.HoldApplied": HoldApplied,
    "dunning.HoldReleased": HoldReleased,
    "dunning.LateFeeCharged": LateFeeCharged,
    "dunning.OccurrenceClosed": OccurrenceClosed,
    "dunning.OccurrenceOpened": OccurrenceOpened,
    "dunning.OccurrenceReopened": OccurrenceReopened,
    "dunning.OccurrenceWithdrawn": OccurrenceWithdrawn,
    "dunning.PaymentApplied": PaymentApplied,
    "dunning.PaymentReversalIgnored": PaymentReversalIgnored,
    "dunning.PaymentReversed": PaymentReversed,
    "dunning.ReminderDue": ReminderDue,
    "dunning.ReminderScheduled": ReminderScheduled,
    "dunning.ReminderSkipped": ReminderSkipped,
    "dunning.RestorationRecorded": RestorationRecorded,
    "dunning.RestorationRequested": RestorationRequested,
    "dunning.SuspensionAnswered": SuspensionAnswered,
    "dunning.SuspensionRequested": SuspensionRequested,
}
