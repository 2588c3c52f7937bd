"""Payload schemas of dunning's decisions (dunning.decisions.v1), as services/dunning/domain builds them."""
from __future__ import annotations

from ..fields import Bool, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..dunning import ReminderDeliveryPayload
from .base import DecisionPayload, same_choices


class BillTracked(DecisionPayload):
    """dunning.BillTracked: a bill dunning follows until it is paid, with its due-date check timer
    (DN.OCCURRENCE)."""

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
    """dunning.CreditApplied: a dispute credit applied to a bill (D.RESOLVE)."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    creditMinor = Int()


class DeliveryRecorded(DecisionPayload):
    """dunning.DeliveryRecorded: the outcome of a reminder's delivery (CP4.REMINDED)."""

    accountId = Id()
    reminderId = Id()
    occurrenceId = Id(optional=True)
    channel = same_choices(ReminderDeliveryPayload, "channel")
    deliveryOutcome = Text()
    delivered = Bool()


class EscalationSkipped(DecisionPayload):
    """dunning.EscalationSkipped: no suspension request at 30 days: all disputed, or already requested
    (DN.ESCALATE)."""

    accountId = Id()
    occurrenceId = Id()
    billId = Id()
    firedTimerId = Id()


class HoldApplied(DecisionPayload):
    """dunning.HoldApplied: a disputed amount held out of dunning (D.HOLD)."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    heldMinor = Int()


class HoldReleased(DecisionPayload):
    """dunning.HoldReleased: a dispute hold released (D.HOLD)."""

    accountId = Id()
    billId = Id()
    guardDecisionId = Id()
    ticketId = Text()
    releasedMinor = Int()


class LateFeeCharged(DecisionPayload):
    """dunning.LateFeeCharged: the late fee of a closed occurrence, 3 per mille a day, not compounded
    (DN.LATE_FEE)."""

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
    """dunning.OccurrenceClosed: an arrears occurrence closed: paid or credited in full (DN.PAYMENT_STOPS)."""

    accountId = Id()
    occurrenceId = Id()
    billId = Id()


class OccurrenceOpened(OccurrenceClosed):
    """dunning.OccurrenceOpened: an arrears occurrence opened at the due date, with the offence count
    (DN.OCCURRENCE)."""

    anchorDate = Timestamp()
    overdueMinor = Int()
    heldMinor = Int()
    offenceCount = Int()
    lookbackMonths = Int()


class OccurrenceReopened(OccurrenceClosed):
    """dunning.OccurrenceReopened: an occurrence reopened by a reversed payment (DN.OCCURRENCE)."""


class OccurrenceWithdrawn(OccurrenceClosed):
    """dunning.OccurrenceWithdrawn: an occurrence that should not be one: paid or disputed before the due
    date (DN.OCCURRENCE)."""

    guardDecisionId = Id(optional=True)
    ticketId = Text(optional=True)


class PaymentApplied(DecisionPayload):
    """dunning.PaymentApplied: a payment allocated to bills (DN.PAYMENT_STOPS)."""

    accountId = Id()
    paymentId = Id()
    amountMinor = Int()
    allocations = ListOf(FreeObject())
    creditMinor = Int()


class PaymentReversed(DecisionPayload):
    """dunning.PaymentReversed: a payment reversed (DN.PAYMENT_STOPS)."""

    accountId = Id()
    paymentId = Id()
    creditRemovedMinor = Int()


class ReminderDue(OccurrenceClosed):
    """dunning.ReminderDue: a reminder to send now, by the channel of the offence (DN.FIRST_LETTER,
    DN.REPEAT_VOICE)."""

    sequence = Int()
    firedTimerId = Id()
    channel = same_choices(ReminderDeliveryPayload, "channel")
    offenceCount = Int()
    overdueMinor = Int()
    accountManagerId = Id(optional=True)


class ReminderScheduled(OccurrenceClosed):
    """dunning.ReminderScheduled: a reminder scheduled by credit level and offence, outside quiet hours
    (DN.FIRST_LETTER, DN.REPEAT_VOICE)."""

    offenceCount = Int()
    sequence = Int()
    channel = same_choices(ReminderDeliveryPayload, "channel")
    voiceAllowed = Bool()
    treatment = Text()
    scheduledFor = Timestamp()


class ReminderSkipped(OccurrenceClosed):
    """dunning.ReminderSkipped: a due reminder not sent: paid, disputed or suspended (DN.PAYMENT_STOPS)."""

    sequence = Int()
    firedTimerId = Id()


class RestorationRequested(DecisionPayload):
    """dunning.RestorationRequested: arrears cleared: restoration of a suspended line requested
    (CP4.RESTORE_48H)."""

    accountId = Id()
    clearedAt = Timestamp()


class SuspensionAnswered(DecisionPayload):
    """dunning.SuspensionAnswered: the guard's answer to a suspension request (DN.ESCALATE)."""

    accountId = Id()
    billId = Id(optional=True)
    guardDecisionId = Id()
    ticketId = Text(optional=True)
    suspended = Bool()


class SuspensionRequested(EscalationSkipped):
    """dunning.SuspensionRequested: suspension requested from the guard 30 days after the due date
    (DN.ESCALATE, CP4.OVERDUE_30)."""

    anchorDate = Timestamp()
    daysOverdue = Int()
    overdueMinor = Int()
    heldMinor = Int()
    lateFeeToDateMinor = Int()
    remindersDelivered = Int()
    remindersSent = Int()
    important = Bool()
    customerTier = Text("CP4.IMPORTANT: the guard holds a diamond/gold suspension for approval.", optional=True)
    accountManagerId = Id("The account manager who must approve an important customer's suspension.",
                          optional=True)
    offenceCount = Int()


class PaymentReversalIgnored(DecisionPayload):
    """dunning.PaymentReversalIgnored: a reversal of a payment dunning never applied (DN.PAYMENT_STOPS)."""

    accountId = Id()
    paymentId = Id()


class RestorationRecorded(DecisionPayload):
    """dunning.RestorationRecorded: the guard's restoration order for an account, recorded
    (CP4.RESTORE_48H)."""

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
