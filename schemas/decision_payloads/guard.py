"""Payload schemas of billing_guard's decisions (guard.decisions.v1), as services/billing_guard/domain builds them."""
from __future__ import annotations

from ..fields import Bool, Choice, FreeObject, Id, Int, ListOf, Money, Text, Timestamp
from ..billing import CdrPayload, CustomerChangePayload, CutoverPayload, DisputePayload, PaymentPayload
from .base import DecisionPayload, same_choices


class BillCycleClosed(DecisionPayload):
    """guard.BillCycleClosed: a bill (billing.bill.v1) recorded for CP4 and disputes. It closes no
    usage cycle: the CDR watermark does (guard.UsageCycleClosed, CP3.LATE)."""

    accountId = Id()
    billId = Id()
    cycle = Text("Bill cycle (YYYY-MM, policy time zone) of the bill period's start.")
    amountMinor = Int("Amount due as billing.bill.v1 stated it.")
    paymentDueDate = Timestamp()


class UsageCycleClosed(DecisionPayload):
    """guard.UsageCycleClosed: the account's CDR watermark (latest call start) passed the cycle's end
    plus the grace period: a CDR of this cycle that comes later is a late adjustment to it (CP3.LATE)."""

    accountId = Id()
    cycle = Text("Cycle closed (YYYY-MM, policy time zone).")
    chargesMinor = Int("Charges of the cycle by call start when it closed.")
    closesAt = Timestamp("Cycle end plus the grace period.")
    watermark = Timestamp("Call start of the CDR that moved the watermark past closesAt.")
    graceSeconds = Int("The policy's grace after the cycle end.")


class CdrRated(DecisionPayload):
    """guard.CdrRated: a CDR rated with the tariff version in force at its start (CP2.EFFECTIVE_DATING,
    CP2.TRACEABLE)."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    sequenceNumber = Int("The CDR's number in its switch's sequence; its switch judges it from this decision "
                         "(CP3.SEQUENCE_GAP). Absent from decisions made before issue 13.",
                         minimum=0, optional=True)
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
    flags = ListOf(Text(), "LATE_ADJUSTMENT: booked to its own, already closed cycle (CP3.LATE); "
                   "IN_CUTOVER_WINDOW: verify before billing (CP5.WINDOW_CDRS).")
    workIds = ListOf(Id())


class CdrUnrated(DecisionPayload):
    """guard.CdrUnrated: a CDR held for review: no tariff version in force (CP2.EFFECTIVE_DATING)."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    sequenceNumber = Int("The CDR's number in its switch's sequence; its switch judges it from this decision "
                         "(CP3.SEQUENCE_GAP). Absent from decisions made before issue 13.",
                         minimum=0, optional=True)
    accountId = Id()
    cycle = Text()
    tariffId = Id()
    tariffVersion = Int(optional=True)
    startDateTime = Timestamp()


class CreditNoteIssued(DecisionPayload):
    """guard.CreditNoteIssued: a credit note for a dispute (D.RESOLVE)."""

    creditNoteId = Id()
    ticketId = Id()
    accountId = Id()
    billId = Id()
    cycle = Text(optional=True)
    amountMinor = Int()
    currency = Text()
    how = Text()


class CustomerDataChangeRejected(DecisionPayload):
    """guard.CustomerDataChangeRejected: a change of billing-relevant customer data, rejected with the
    reasons (CP1)."""

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
    """guard.CustomerDataChanged: a change of billing-relevant customer data, accepted with before and
    after (CP1)."""


class DisputeActionRejected(DecisionPayload):
    """guard.DisputeActionRejected: a dispute action not allowed in the ticket's state (D.OPEN)."""

    ticketId = Id()
    accountId = Id()
    action = Text()
    actorId = Id()


class DisputeAutoCredited(DecisionPayload):
    """guard.DisputeAutoCredited: a dispute the evidence decides: credited at once (D.AUTO_CREDIT)."""

    ticketId = Id()
    accountId = Id()
    resolution = same_choices(DisputePayload, "resolution")
    creditMinor = Int()
    faults = ListOf(FreeObject())
    holdReleasedMinor = Int()


class DisputeClosed(DecisionPayload):
    """guard.DisputeClosed: a resolved dispute closed (D.RESOLVE)."""

    ticketId = Id()
    accountId = Id()
    actorId = Id()


class DisputeOpened(DecisionPayload):
    """guard.DisputeOpened: a dispute acknowledged, its amount held, its evidence gathered (D.OPEN, D.HOLD,
    D.EVIDENCE)."""

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
    """guard.DisputeReplied: the owner's reply to a dispute, on time or late (D.REPLY_15D)."""

    replyText = Text(optional=True)


class DisputeReplyOverdue(DecisionPayload):
    """guard.DisputeReplyOverdue: a dispute with no reply within 15 days (D.REPLY_15D)."""

    ticketId = Id()
    ownerId = Id()
    openedAt = Timestamp()
    replyDueAt = Timestamp()


class DisputeResolved(DisputeClosed):
    """guard.DisputeResolved: a dispute resolved; its hold released (D.RESOLVE, D.HOLD)."""

    resolution = same_choices(DisputePayload, "resolution")
    creditMinor = Int()
    reason = Text()
    holdReleasedMinor = Int()


class DisputeTransferAccepted(DisputeClosed):
    """guard.DisputeTransferAccepted: a dispute transfer accepted by its new owner (D.OPEN)."""

    fromOwnerId = Id()
    toOwnerId = Id()


class DisputeTransferProposed(DisputeTransferAccepted):
    """guard.DisputeTransferProposed: a dispute transfer proposed by its owner (D.OPEN)."""

    reason = Text()


class DuplicateCdrSuppressed(DecisionPayload):
    """guard.DuplicateCdrSuppressed: a second copy of a CDR (same switch and origin id), never charged
    (CP3.DEDUP)."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    sequenceNumber = Int("The CDR's number in its switch's sequence, as the copy stated it. Absent from "
                         "decisions made before issue 13.", minimum=0, optional=True)
    accountId = Id()
    originalUsageId = Id()
    cycle = Text()


class HugeFeeAlert(DecisionPayload):
    """guard.HugeFeeAlert: a cycle's charges above the factor times the recent average: notify the customer
    (CP3.HUGE_FEE)."""

    accountId = Id()
    cycle = Text()
    cycleChargesMinor = Int()
    baselineCycles = ListOf(Text())
    baselineAverageMinor = Int()
    factor = Int()
    notifyCustomerAt = Text()
    lateAdjustment = Bool("True when a late adjustment (CP3.LATE) pushed the closed cycle over.", optional=True)


class OutageCreditIssued(DecisionPayload):
    """guard.OutageCreditIssued: a credit for an outage of a cleared work (CP5.OUTAGE_CREDIT)."""

    workId = Id()
    actualOutageStart = Timestamp()
    actualOutageEnd = Timestamp()
    accountId = Id()
    outageSeconds = Int()
    creditedHours = Int()
    creditMinor = Int()
    rounding = Text()


class OutageCreditRefused(DecisionPayload):
    """guard.OutageCreditRefused: no outage credit: the work was not cleared (CP5.OUTAGE_CREDIT)."""

    workId = Id()
    actualOutageStart = Timestamp()
    actualOutageEnd = Timestamp()


class PaymentRecorded(DecisionPayload):
    """guard.PaymentRecorded: a payment the guard tracks for suspension checks (CP4.NO_PAYMENT_IN_FLIGHT)."""

    paymentId = Id()
    accountId = Id()
    billId = Id(optional=True)
    amountMinor = Int()
    status = same_choices(PaymentPayload, "status")
    paymentDate = Timestamp()


class PlannedWorkBlocked(DecisionPayload):
    """guard.PlannedWorkBlocked: a planned cutover or upgrade missing notice or approvals (CP5)."""

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
    noticeLeadHours = Int("Whole hours (rounded down) from the earliest notice sent by the decision to the "
                          "planned start (CP5.NOTICE_72H); null when none was sent.", optional=True)


class PlannedWorkCleared(PlannedWorkBlocked):
    """guard.PlannedWorkCleared: a planned cutover or upgrade with its notice and approvals (CP5)."""


class RestorationOrdered(DecisionPayload):
    """guard.RestorationOrdered: restoration of a suspended line ordered on payment (CP4.RESTORE_48H)."""

    accountId = Id()
    paymentId = Id()
    restoreBy = Timestamp()


class RestorationSlaMissed(DecisionPayload):
    """guard.RestorationSlaMissed: a line not confirmed restored within 48 h (CP4.RESTORE_48H)."""

    accountId = Id()
    restoreBy = Timestamp()


class SequenceGapAlert(DecisionPayload):
    """guard.SequenceGapAlert: a gap in a switch's CDR sequence still open after the grace period
    (CP3.SEQUENCE_GAP)."""

    switchId = Id()
    missingRanges = ListOf(FreeObject())
    missingCount = Int()
    timerId = Id()


class StaleCdrHeld(DecisionPayload):
    """guard.StaleCdrHeld: a CDR older than the dispute window, held for review (CP3.STALE)."""

    usageId = Id()
    switchId = Id()
    originId = Id()
    sequenceNumber = Int("The CDR's number in its switch's sequence; its switch judges it from this decision "
                         "(CP3.SEQUENCE_GAP). Absent from decisions made before issue 13.",
                         minimum=0, optional=True)
    accountId = Id()
    cycle = Text()
    startDateTime = Timestamp()
    staleAfterMonths = Int()


class _SuspensionRequest(DecisionPayload):
    requestId = Id()
    accountId = Id()
    billId = Id()
    overdueMinor = Int()
    undisputedOverdueMinor = Int()
    overduePeriodDays = Int()
    lateFeeMinor = Int()


class _ApprovalAnswer(DecisionPayload):
    """The billing.approval.v1 answer a decision acted on (CP4.IMPORTANT)."""

    approvalId = Id(optional=True)
    approverId = Id(optional=True)
    approverRole = Id(optional=True)
    verdict = Choice(("approve", "refuse"), optional=True)
    approvalReason = Text(optional=True)
    decidedAt = Timestamp("When the approver answered.", optional=True)


class SuspensionApproved(_SuspensionRequest, _ApprovalAnswer):
    """guard.SuspensionApproved: a suspension request that passes every CP4 check; for an important
    customer, with the approval that approved it."""

    terminationCheckAt = Timestamp()


class SuspensionDenied(_SuspensionRequest, _ApprovalAnswer):
    """guard.SuspensionDenied: a suspension request refused, with the checks it failed (CP4); for an
    important customer, the refusal or the approval it re-checked, or the timeout."""

    approvalDueAt = Timestamp("When an unanswered approval timed out.", optional=True)


class SuspensionAwaitingApproval(_SuspensionRequest):
    """guard.SuspensionAwaitingApproval: an important customer's suspension held for an answer on
    billing.approval.v1 by approvalDueAt; no answer in time counts as a refusal (CP4.IMPORTANT).
    The answer must come from the request's account manager (approverId = accountManagerId) unless
    its role is one of anyAccountApproverRoles."""

    customerTier = Text(optional=True)
    accountManagerId = Id(optional=True)
    arrearsComputedAt = Timestamp()
    paymentDueDate = Timestamp()
    remindersDelivered = Int()
    approvalDueAt = Timestamp("An answer decided after this is rejected (APPROVAL_AFTER_TIMEOUT).")
    approverRoles = ListOf(Id(), "Roles that may answer.")
    anyAccountApproverRoles = ListOf(Id(), "Roles that may answer for any account manager's customer.")


class SuspensionApprovalRejected(_ApprovalAnswer):
    """guard.SuspensionApprovalRejected: an answer that decides nothing, with its reason: role not
    allowed, approver not the account manager, decided after the timeout, request already answered
    or timed out, or no such request held (CP4.IMPORTANT)."""

    requestId = Id()
    accountId = Id()


class SuspensionApprovalEscalated(DecisionPayload):
    """guard.SuspensionApprovalEscalated: no answer by approvalDueAt: the request is denied and goes
    to the policy's escalation role (CP4.IMPORTANT)."""

    requestId = Id()
    accountId = Id()
    accountManagerId = Id(optional=True)
    escalateTo = Id()
    approvalDueAt = Timestamp()


class SwitchSequenceRecorded(DecisionPayload):
    """guard.SwitchSequenceRecorded: a CDR's number opened a gap in its switch's sequence, or closed one
    (CP3.SEQUENCE_GAP). Decisions made before issue 13 also record numbers in order (inSequence),
    filling part of a gap (gapFilled) or repeated."""

    switchId = Id()
    sequenceNumber = Int()
    usageId = Id()
    gapTimerId = Id(optional=True)
    missingFrom = Int(optional=True)
    missingTo = Int(optional=True)


class TariffVersionAccepted(DecisionPayload):
    """guard.TariffVersionAccepted: a tariff version accepted; an increase only with approval and filing
    (CP2)."""

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
    """guard.TariffVersionRejected: a tariff version rejected with the reasons (CP2)."""

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
    """guard.TerminationEligible: a line suspended 60 days and unpaid, eligible for termination
    (CP4.TERMINATION)."""

    accountId = Id()
    suspendedSince = Timestamp()
    automatic = Bool()


class DisputeCancelled(DisputeClosed):
    """guard.DisputeCancelled: a dispute cancelled; its hold released (D.HOLD)."""

    holdReleasedMinor = Int()


class RestorationCompleted(DecisionPayload):
    """guard.RestorationCompleted: the network's report of a restored line, within the 48 h or late
    (CP4.RESTORE_48H)."""

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
    "guard.SuspensionApprovalEscalated": SuspensionApprovalEscalated,
    "guard.SuspensionApprovalRejected": SuspensionApprovalRejected,
    "guard.SuspensionApproved": SuspensionApproved,
    "guard.SuspensionAwaitingApproval": SuspensionAwaitingApproval,
    "guard.SuspensionDenied": SuspensionDenied,
    "guard.SwitchSequenceRecorded": SwitchSequenceRecorded,
    "guard.TariffVersionAccepted": TariffVersionAccepted,
    "guard.TariffVersionRejected": TariffVersionRejected,
    "guard.TerminationEligible": TerminationEligible,
    "guard.UsageCycleClosed": UsageCycleClosed,
}
