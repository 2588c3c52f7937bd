"""Payload schemas of billing_guard's decisions (guard.decisions.v1), as services/billing_guard/domain builds them."""
from __future__ import annotations

from ..fields import Bool, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..billing import CdrPayload, CustomerChangePayload, CutoverPayload, DisputePayload, PaymentPayload
from .base import DecisionPayload, same_choices


class BillCycleClosed(DecisionPayload):
    """guard.BillCycleClosed."""

    accountId = Id()
    billId = Id()
    cycle = Text()
    amountMinor = Int()
    paymentDueDate = Timestamp()
    guardChargesMinor = Int()


class CdrRated(DecisionPayload):
    """guard.CdrRated."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    accountId = Id()
    cycle = Text()
    naturalCycle = Text()
    startDateTime = Timestamp()
    usageType = same_choices(CdrPayload, "usageType")
    destinationClass = same_choices(CdrPayload, "destinationClass")
    durationSeconds = Int()
    volumeBytes = Int(optional=True)
    callingNumber = Text()
    calledNumber = Text()
    tariffId = Id()
    tariffVersion = Int()
    amountMinor = Int()
    billedSeconds = Int()
    freeSecondsUsed = Int()
    rateApplied = Int()
    connectFeeMinor = Int()
    capped = Bool()
    rounding = Text()
    flags = ListOf(Text())
    workIds = ListOf(Id())


class CdrUnrated(DecisionPayload):
    """guard.CdrUnrated."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    accountId = Id()
    cycle = Text()
    tariffId = Id()
    tariffVersion = Int(optional=True)
    startDateTime = Timestamp()


class CreditNoteIssued(DecisionPayload):
    """guard.CreditNoteIssued."""

    creditNoteId = Id()
    ticketId = Id()
    accountId = Id()
    billId = Id()
    cycle = Text(optional=True)
    amountMinor = Int()
    currency = Text()
    how = Text()


class CustomerDataChangeRejected(DecisionPayload):
    """guard.CustomerDataChangeRejected."""

    requestId = Id()
    accountId = Id()
    field = same_choices(CustomerChangePayload, "field")
    before = Text(optional=True, min_length=0)
    after = Text(min_length=0)
    statedOldValue = Text(optional=True, min_length=0)
    operatorId = Id()
    operatorRole = Text()
    approverId = Id(optional=True)
    channel = Text()
    reason = Text()
    effectiveFrom = Timestamp()


class CustomerDataChanged(CustomerDataChangeRejected):
    """guard.CustomerDataChanged."""


class DisputeActionRejected(DecisionPayload):
    """guard.DisputeActionRejected."""

    ticketId = Id()
    accountId = Id()
    action = Text()
    actorId = Id()


class DisputeAutoCredited(DecisionPayload):
    """guard.DisputeAutoCredited."""

    ticketId = Id()
    accountId = Id()
    resolution = same_choices(DisputePayload, "resolution")
    creditMinor = Int()
    faults = ListOf(FreeObject())
    holdReleasedMinor = Int()


class DisputeClosed(DecisionPayload):
    """guard.DisputeClosed."""

    ticketId = Id()
    accountId = Id()
    actorId = Id()


class DisputeOpened(DecisionPayload):
    """guard.DisputeOpened."""

    ticketId = Id()
    ticketType = Text()
    accountId = Id()
    billId = Id()
    cycle = Text(optional=True)
    disputedItems = ListOf(Id())
    disputedAmountMinor = Int()
    ownerId = Id()
    channel = Text()
    reason = Text()
    hold = FreeObject()
    replyDueAt = Timestamp()
    evidence = FreeObject()


class DisputeReplied(DisputeClosed):
    """guard.DisputeReplied."""

    replyText = Text(optional=True)


class DisputeReplyOverdue(DecisionPayload):
    """guard.DisputeReplyOverdue."""

    ticketId = Id()
    ownerId = Id()
    openedAt = Timestamp()
    replyDueAt = Timestamp()


class DisputeResolved(DisputeClosed):
    """guard.DisputeResolved."""

    resolution = same_choices(DisputePayload, "resolution")
    creditMinor = Int()
    reason = Text()
    holdReleasedMinor = Int()


class DisputeTransferAccepted(DisputeClosed):
    """guard.DisputeTransferAccepted."""

    fromOwnerId = Id()
    toOwnerId = Id()


class DisputeTransferProposed(DisputeTransferAccepted):
    """guard.DisputeTransferProposed."""

    reason = Text()


class DuplicateCdrSuppressed(DecisionPayload):
    """guard.DuplicateCdrSuppressed."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    accountId = Id()
    originalUsageId = Id()
    cycle = Text()


class HugeFeeAlert(DecisionPayload):
    """guard.HugeFeeAlert."""

    accountId = Id()
    cycle = Text()
    cycleChargesMinor = Int()
    baselineCycles = ListOf(Text())
    baselineAverageMinor = Int()
    factor = Int()
    notifyCustomerAt = Text()


class OutageCreditIssued(DecisionPayload):
    """guard.OutageCreditIssued."""

    workId = Id()
    actualOutageStart = Timestamp()
    actualOutageEnd = Timestamp()
    accountId = Id()
    outageSeconds = Int()
    creditedHours = Int()
    creditMinor = Int()
    rounding = Text()


class OutageCreditRefused(DecisionPayload):
    """guard.OutageCreditRefused."""

    workId = Id()
    actualOutageStart = Timestamp()
    actualOutageEnd = Timestamp()


class PaymentRecorded(DecisionPayload):
    """guard.PaymentRecorded."""

    paymentId = Id()
    accountId = Id()
    billId = Id(optional=True)
    amountMinor = Int()
    status = same_choices(PaymentPayload, "status")
    paymentDate = Timestamp()


class PlannedWorkBlocked(DecisionPayload):
    """guard.PlannedWorkBlocked."""

    workId = Id()
    workKind = same_choices(CutoverPayload, "workKind")
    provinces = ListOf(Text())
    areas = ListOf(Text())
    switchIds = ListOf(Id())
    plannedStart = Timestamp()
    plannedEnd = Timestamp()
    expectedImpactHours = Int()
    affectsImportantCustomers = Bool()
    missing = ListOf(Text())
    affectedAccountCount = Int()


class PlannedWorkCleared(PlannedWorkBlocked):
    """guard.PlannedWorkCleared."""


class RestorationOrdered(DecisionPayload):
    """guard.RestorationOrdered."""

    accountId = Id()
    paymentId = Id()
    restoreBy = Timestamp()


class RestorationSlaMissed(DecisionPayload):
    """guard.RestorationSlaMissed."""

    accountId = Id()
    restoreBy = Timestamp()


class SequenceGapAlert(DecisionPayload):
    """guard.SequenceGapAlert."""

    switchId = Id()
    missingRanges = ListOf(FreeObject())
    missingCount = Int()
    timerId = Id()


class StaleCdrHeld(DecisionPayload):
    """guard.StaleCdrHeld."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    accountId = Id()
    cycle = Text()
    startDateTime = Timestamp()
    staleAfterMonths = Int()


class SuspensionApproved(DecisionPayload):
    """guard.SuspensionApproved."""

    requestId = Id()
    accountId = Id()
    billId = Id()
    overdueMinor = Int()
    undisputedOverdueMinor = Int()
    overduePeriodDays = Int()
    lateFeeMinor = Int()
    terminationCheckAt = Timestamp()


class SuspensionDenied(DecisionPayload):
    """guard.SuspensionDenied."""

    requestId = Id()
    accountId = Id()
    billId = Id()
    overdueMinor = Int()
    undisputedOverdueMinor = Int()
    overduePeriodDays = Int()
    lateFeeMinor = Int()


class SwitchSequenceRecorded(DecisionPayload):
    """guard.SwitchSequenceRecorded."""

    switchId = Id()
    sequenceNumber = Int()
    usageId = Id()
    gapTimerId = Id(optional=True)
    missingFrom = Int(optional=True)
    missingTo = Int(optional=True)


class TariffVersionAccepted(DecisionPayload):
    """guard.TariffVersionAccepted."""

    tariffId = Id()
    version = Int()
    name = Text()
    replacesVersion = Int(optional=True)
    increase = Bool()
    increaseFindings = ListOf(Text())
    basketItemsChargedMore = ListOf(FreeObject())
    approvalRef = Text(optional=True)
    filingRef = Text(optional=True)
    tariff = FreeObject()


class TariffVersionRejected(DecisionPayload):
    """guard.TariffVersionRejected."""

    tariffId = Id()
    version = Int()
    name = Text()
    replacesVersion = Int(optional=True)
    increase = Bool()
    increaseFindings = ListOf(Text())
    basketItemsChargedMore = ListOf(FreeObject())
    approvalRef = Text(optional=True)
    filingRef = Text(optional=True)


class TerminationEligible(DecisionPayload):
    """guard.TerminationEligible."""

    accountId = Id()
    suspendedSince = Timestamp()
    automatic = Bool()


class DisputeCancelled(DisputeClosed):
    """guard.DisputeCancelled."""

    holdReleasedMinor = Int()


class RestorationCompleted(DecisionPayload):
    """guard.RestorationCompleted."""

    accountId = Id()
    completedAt = Timestamp()
    restoreBy = Timestamp(optional=True)
    restorationOrderId = Id(optional=True)
    networkSystem = Text(optional=True)


PAYLOADS = {
    "guard.BillCycleClosed": BillCycleClosed,
    "guard.CdrRated": CdrRated,
    "guard.CdrUnrated": CdrUnrated,
    "guard.CreditNoteIssued": CreditNoteIssued,
    "guard.CustomerDataChangeRejected": CustomerDataChangeRejected,
    "guard.CustomerDataChanged": CustomerDataChanged,
    "guard.DisputeActionRejected": DisputeActionRejected,
    "guard.DisputeAutoCredited": DisputeAutoCredited,
    "guard.DisputeCancelled": DisputeCancelled,
    "guard.DisputeClosed": DisputeClosed,
    "guard.DisputeOpened": DisputeOpened,
    "guard.DisputeReplied": DisputeReplied,
    "guard.DisputeReplyOverdue": DisputeReplyOverdue,
    "guard.DisputeResolved": DisputeResolved,
    "guard.DisputeTransferAccepted": DisputeTransferAccepted,
    "guard.DisputeTransferProposed": DisputeTransferProposed,
    "guard.DuplicateCdrSuppressed": DuplicateCdrSuppressed,
    "guard.HugeFeeAlert": HugeFeeAlert,
    "guard.OutageCreditIssued": OutageCreditIssued,
    "guard.OutageCreditRefused": OutageCreditRefused,
    "guard.PaymentRecorded": PaymentRecorded,
    "guard.PlannedWorkBlocked": PlannedWorkBlocked,
    "guard.PlannedWorkCleared": PlannedWorkCleared,
    "guard.RestorationCompleted": RestorationCompleted,
    "guard.RestorationOrdered": RestorationOrdered,
    "guard.RestorationSlaMissed": RestorationSlaMissed,
    "guard.SequenceGapAlert": SequenceGapAlert,
    "guard.StaleCdrHeld": StaleCdrHeld,
    "guard.SuspensionApproved": SuspensionApproved,
    "guard.SuspensionDenied": SuspensionDenied,
    "guard.SwitchSequenceRecorded": SwitchSequenceRecorded,
    "guard.TariffVersionAccepted": TariffVersionAccepted,
    "guard.TariffVersionRejected": TariffVersionRejected,
    "guard.TerminationEligible": TerminationEligible,
}
