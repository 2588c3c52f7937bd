"""Every decision type dunning appends (dunning.decisions.v1), named once (SPEC.md section 3).

Finance's projection rules and self-check, the work queue and the CLI read dunning's decisions
by these names; schemas/decision_payloads/dunning.py holds their payload schemas.
"""
from __future__ import annotations

from typing import Final

# Bills and payments (DN.OCCURRENCE, DN.PAYMENT_STOPS)
BILL_TRACKED: Final = "dunning.BillTracked"
PAYMENT_APPLIED: Final = "dunning.PaymentApplied"
PAYMENT_REVERSED: Final = "dunning.PaymentReversed"
PAYMENT_REVERSAL_IGNORED: Final = "dunning.PaymentReversalIgnored"

# Occurrences (DN.OCCURRENCE) and late fees (DN.LATE_FEE)
OCCURRENCE_OPENED: Final = "dunning.OccurrenceOpened"
OCCURRENCE_CLOSED: Final = "dunning.OccurrenceClosed"
OCCURRENCE_WITHDRAWN: Final = "dunning.OccurrenceWithdrawn"
OCCURRENCE_REOPENED: Final = "dunning.OccurrenceReopened"
LATE_FEE_CHARGED: Final = "dunning.LateFeeCharged"

# Reminders (DN.FIRST_LETTER, DN.REPEAT_VOICE, DN.QUIET_HOURS, CP4.REMINDED)
REMINDER_SCHEDULED: Final = "dunning.ReminderScheduled"
REMINDER_DUE: Final = "dunning.ReminderDue"
REMINDER_SKIPPED: Final = "dunning.ReminderSkipped"
DELIVERY_RECORDED: Final = "dunning.DeliveryRecorded"

# Disputes and credits taken from the guard (D.HOLD, D.RESOLVE)
HOLD_APPLIED: Final = "dunning.HoldApplied"
HOLD_RELEASED: Final = "dunning.HoldReleased"
CREDIT_APPLIED: Final = "dunning.CreditApplied"

# Escalation (DN.ESCALATE, CP4.RESTORE_48H)
SUSPENSION_REQUESTED: Final = "dunning.SuspensionRequested"
SUSPENSION_ANSWERED: Final = "dunning.SuspensionAnswered"
ESCALATION_SKIPPED: Final = "dunning.EscalationSkipped"
RESTORATION_REQUESTED: Final = "dunning.RestorationRequested"
RESTORATION_RECORDED: Final = "dunning.RestorationRecorded"

ALL: Final = frozenset({
    BILL_TRACKED, PAYMENT_APPLIED, PAYMENT_REVERSED, PAYMENT_REVERSAL_IGNORED,
    OCCURRENCE_OPENED, OCCURRENCE_CLOSED, OCCURRENCE_WITHDRAWN, OCCURRENCE_REOPENED, LATE_FEE_CHARGED,
    REMINDER_SCHEDULED, REMINDER_DUE, REMINDER_SKIPPED, DELIVERY_RECORDED,
    HOLD_APPLIED, HOLD_RELEASED, CREDIT_APPLIED,
    SUSPENSION_REQUESTED, SUSPENSION_ANSWERED, ESCALATION_SKIPPED, RESTORATION_REQUESTED, RESTORATION_RECORDED,
})
