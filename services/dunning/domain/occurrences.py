"""DN.OCCURRENCE: an arrears occurrence starts when a bill is unpaid (net of disputes and
credits) after its due date and ends when it is paid in full; the offence count is the
number of occurrences in the look-back window, the current one included."""
from __future__ import annotations

from datetime import datetime, timedelta

from schemas.decision_types.dunning import LATE_FEE_CHARGED, OCCURRENCE_CLOSED, OCCURRENCE_OPENED
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import rfc3339

from .account import AccountState, Bill, Occurrence
from .late_fees import late_fee
from .policy import DunningPolicy
from .reminders import schedule_reminder

ESCALATE = "escalate"


def months_before(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, 28)  # every month has a 28th; look-back precision of days is enough
    return moment.replace(year=year, month=month + 1, day=day)


def offence_count(state: AccountState, anchor: datetime, lookback_months: int) -> int:
    since = months_before(anchor, lookback_months)
    return 1 + sum(1 for o in state.occurrences if since < o.anchor <= anchor)


def occurrence_id_for(account_id: str, bill_id: str) -> str:
    return derived_id("occurrence", account_id, bill_id)


def escalation_timer(account_id: str, occurrence_id: str, anchor: datetime, policy: DunningPolicy, attempt: int = 0) -> Timer:
    # "More than N days overdue" (DN.ESCALATE): one second past the N-day mark.
    return Timer(
        timer_id=derived_id("dunning", occurrence_id, ESCALATE, attempt),
        due_at=anchor + timedelta(days=policy.suspend_after_days, seconds=1),
        kind=ESCALATE,
        key=account_id,
        data={"accountId": account_id, "occurrenceId": occurrence_id},
    )


def open_occurrence(
    state: AccountState, bill: Bill, account_id: str, policy: DunningPolicy, *, with_reminder: bool, earlier_in_batch: int = 0
) -> list[Decision]:
    anchor = bill.due_at
    count = offence_count(state, anchor, policy.lookback_months) + earlier_in_batch
    occurrence_id = occurrence_id_for(account_id, bill.bill_id)
    decisions = [
        Decision(
            decision_type=OCCURRENCE_OPENED,
            rule_ids=("DN.OCCURRENCE",),
            outcome="opened",
            reason_codes=("UNPAID_AFTER_DUE_DATE",),
            business_time=anchor,
            payload={
                "accountId": account_id,
                "occurrenceId": occurrence_id,
                "billId": bill.bill_id,
                "anchorDate": rfc3339(anchor),
                "overdueMinor": bill.undisputed,
                "heldMinor": bill.held,
                "offenceCount": count,
                "lookbackMonths": policy.lookback_months,
            },
            timer=escalation_timer(account_id, occurrence_id, anchor, policy) if with_reminder else None,
        )
    ]
    if with_reminder:
        treatment = policy.treatment_for(bill.credit_level, bill.tier)
        first_at = anchor + timedelta(days=treatment.grace_days)
        decisions.append(
            schedule_reminder(
                account_id, occurrence_id, bill, count, first_at, sequence=1, policy=policy, business_time=anchor
            )
        )
    return decisions


def close_occurrence(occurrence: Occurrence, bill: Bill, account_id: str, at: datetime, policy: DunningPolicy,
                     reason: str) -> list[Decision]:
    """Paid in full (or credited): close, stop every pending reminder, charge the late fee."""
    decisions = [
        Decision(
            decision_type=OCCURRENCE_CLOSED,
            rule_ids=("DN.OCCURRENCE", "DN.PAYMENT_STOPS"),
            outcome="closed",
            reason_codes=(reason,),
            business_time=at,
            payload={"accountId": account_id, "occurrenceId": occurrence.occurrence_id, "billId": occurrence.bill_id},
            cancels_timers=tuple(sorted(occurrence.pending_timers)),
        )
    ]
    fee, days, basis = late_fee(occurrence.anchor, bill, at, policy.late_fee_per_mille)
    due = fee - occurrence.fee_charged
    if due > 0:
        decisions.append(
            Decision(
                decision_type=LATE_FEE_CHARGED,
                rule_ids=("DN.LATE_FEE",),
                outcome="charged",
                business_time=at,
                payload={
                    "accountId": account_id,
                    "occurrenceId": occurrence.occurrence_id,
                    "billId": occurrence.bill_id,
                    "feeMinor": due,
                    "totalFeeMinor": fee,
                    "daysOverdue": days,
                    "basisMinorDays": basis,
                    "perMilleDaily": policy.late_fee_per_mille,
                    "rounding": "floor(sum of daily undisputed overdue x per-mille / 1000)",
                },
            )
        )
    return decisions
