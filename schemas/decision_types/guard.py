"""Every decision type billing_guard publishes on guard.decisions.v1, named once.

The guard's rules, the finance read side and dunning (which reacts to disputes, credit notes and
suspension answers) all name these types; spelling them here keeps a renamed type from being
missed anywhere. The payload each carries is in schemas/decision_payloads/guard.py. This module
imports nothing, so any reader of the guard's decisions can depend on it without pulling in rules.
"""
from __future__ import annotations

# CP1 customer-data modification (SPEC.md 1, CP1).
CUSTOMER_DATA_CHANGED = "guard.CustomerDataChanged"
CUSTOMER_DATA_CHANGE_REJECTED = "guard.CustomerDataChangeRejected"

# CP2 tariff-data modification.
TARIFF_VERSION_ACCEPTED = "guard.TariffVersionAccepted"
TARIFF_VERSION_REJECTED = "guard.TariffVersionRejected"

# CP3 offline billing: rating, dedup, stale, late, huge fee, sequence gaps.
CDR_RATED = "guard.CdrRated"
CDR_UNRATED = "guard.CdrUnrated"
DUPLICATE_CDR_SUPPRESSED = "guard.DuplicateCdrSuppressed"
STALE_CDR_HELD = "guard.StaleCdrHeld"
HUGE_FEE_ALERT = "guard.HugeFeeAlert"
USAGE_CYCLE_CLOSED = "guard.UsageCycleClosed"
SWITCH_SEQUENCE_RECORDED = "guard.SwitchSequenceRecorded"
SEQUENCE_GAP_ALERT = "guard.SequenceGapAlert"

# CP4 arrears suspension, restoration and termination; the bill recorded for its checks.
BILL_CYCLE_CLOSED = "guard.BillCycleClosed"
PAYMENT_RECORDED = "guard.PaymentRecorded"
SUSPENSION_APPROVED = "guard.SuspensionApproved"
SUSPENSION_DENIED = "guard.SuspensionDenied"
SUSPENSION_AWAITING_APPROVAL = "guard.SuspensionAwaitingApproval"
SUSPENSION_APPROVAL_REJECTED = "guard.SuspensionApprovalRejected"
SUSPENSION_APPROVAL_ESCALATED = "guard.SuspensionApprovalEscalated"
RESTORATION_ORDERED = "guard.RestorationOrdered"
RESTORATION_SLA_MISSED = "guard.RestorationSlaMissed"
RESTORATION_COMPLETED = "guard.RestorationCompleted"
TERMINATION_ELIGIBLE = "guard.TerminationEligible"

# CP5 engineering cutover / software upgrade.
PLANNED_WORK_CLEARED = "guard.PlannedWorkCleared"
PLANNED_WORK_BLOCKED = "guard.PlannedWorkBlocked"
OUTAGE_CREDIT_ISSUED = "guard.OutageCreditIssued"
OUTAGE_CREDIT_REFUSED = "guard.OutageCreditRefused"

# Disputes (SPEC.md 2, D.*).
DISPUTE_OPENED = "guard.DisputeOpened"
DISPUTE_ACTION_REJECTED = "guard.DisputeActionRejected"
DISPUTE_TRANSFER_PROPOSED = "guard.DisputeTransferProposed"
DISPUTE_TRANSFER_ACCEPTED = "guard.DisputeTransferAccepted"
DISPUTE_REPLIED = "guard.DisputeReplied"
DISPUTE_REPLY_OVERDUE = "guard.DisputeReplyOverdue"
DISPUTE_AUTO_CREDITED = "guard.DisputeAutoCredited"
DISPUTE_RESOLVED = "guard.DisputeResolved"
DISPUTE_CLOSED = "guard.DisputeClosed"
DISPUTE_CANCELLED = "guard.DisputeCancelled"
CREDIT_NOTE_ISSUED = "guard.CreditNoteIssued"
# Every DISPUTE_* type starts with it: a charge's story lists a ticket's steps by this prefix.
DISPUTE_PREFIX = "guard.Dispute"

ALL = frozenset(value for name, value in dict(globals()).items()
                if name.isupper() and name != "DISPUTE_PREFIX" and isinstance(value, str))
