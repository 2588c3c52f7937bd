"""Bills and payments: DN.OCCURRENCE and DN.PAYMENT_STOPS."""
from __future__ import annotations

from datetime import datetime, timedelta

from schemas.decision_types.dunning import (
    BILL_TRACKED, OCCURRENCE_REOPENED, OCCURRENCE_WITHDRAWN, PAYMENT_APPLIED, PAYMENT_REVERSAL_IGNORED, PAYMENT_REVERSED,
)
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import rfc3339

from .account import AccountState, Occurrence
from .escalation import restoration_if_cleared
from .occurrences import close_occurrence, escalation_timer, occurrence_id_for, open_occurrence
from .policy import DunningPolicy
from .reminders import schedule_reminder

DUE_CHECK = "dueCheck"


def due_check_timer_id(account_id: str, bill_id: str) -> str:
    return derived_id("dunning", account_id, bill_id, DUE_CHECK)


def on_bill(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    bill = event.payload
    if bill["billId"] in state.bills:
        return []  # a re-issued bill with the same id changes nothing already tracked
    amount = bill["amountDue"]["amountMinor"]
    credit_applied = min(state.credit, amount)
    due_at = bill["paymentDueDate"]
    customer = bill["customer"]
    return [
        Decision(
            decision_type=BILL_TRACKED,
            rule_ids=("DN.OCCURRENCE",),
            outcome="tracking" if amount > credit_applied else "settledByCredit",
            payload={
                "accountId": bill["accountId"],
                "billId": bill["billId"],
                "amountDueMinor": amount,
                "creditAppliedMinor": credit_applied,
                "paymentDueDate": rfc3339(due_at),
                "creditLevel": customer["creditLevel"],
                "customerTier": customer["customerTier"],
                "important": bool(customer.get("important")),
                "accountManagerId": customer.get("accountManagerId"),
            },
            timer=Timer(
                timer_id=due_check_timer_id(bill["accountId"], bill["billId"]),
                due_at=due_at,
                kind=DUE_CHECK,
                key=bill["accountId"],
                data={"billId": bill["billId"], "accountId": bill["accountId"]},
            )
            if amount > credit_applied
            else None,
        )
    ]


def on_due_check(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    data = event.payload["data"]
    bill = state.bills.get(data["billId"])
    # Net of disputes and credits: a bill wholly on hold is not in arrears (yet).
    if bill is None or bill.undisputed == 0 or state.occurrence_for(bill.bill_id):
        return []
    return open_occurrence(state, bill, data["accountId"], policy, with_reminder=True)


def _allocate(state: AccountState, amount: int, bill_id: str | None) -> tuple[list[dict], int]:
    """Pay the named bill first, then the oldest open bills; the rest becomes credit."""
    order = sorted(state.bills.values(), key=lambda b: (b.bill_id != bill_id, b.due_at, b.bill_id))
    allocations, left = [], amount
    for bill in order:
        if left == 0:
            break
        take = min(left, bill.outstanding)
        if take:
            allocations.append({"billId": bill.bill_id, "amountMinor": take})
            left -= take
    return allocations, left


def on_payment(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    payment = event.payload
    status = payment["status"]
    if status == "pending":
        return []  # only money received moves arrears; CP4 notes payments in flight
    if status == "reversed":
        return on_reversal(state, event, policy)
    if payment["paymentId"] in state.payments:
        return []
    account_id = payment["accountId"]
    paid_at = payment["paymentDate"]
    allocations, credit = _allocate(state, payment["amount"]["amountMinor"], payment.get("billId"))
    decisions, open_ids = _occurrences_proven_by(state, allocations, account_id, paid_at, policy)
    cleared = [a["billId"] for a in allocations if state.bills[a["billId"]].outstanding == a["amountMinor"]]
    decisions.append(
        Decision(
            decision_type=PAYMENT_APPLIED,
            rule_ids=("DN.PAYMENT_STOPS",),
            outcome="applied",
            business_time=paid_at,
            payload={
                "accountId": account_id,
                "paymentId": payment["paymentId"],
                "amountMinor": payment["amount"]["amountMinor"],
                "allocations": allocations,
                "creditMinor": credit,
            },
            cancels_timers=tuple(due_check_timer_id(account_id, b) for b in cleared),
        )
    )
    return decisions + _end_cleared_occurrences(state, cleared, open_ids, account_id, paid_at, policy)


def _occurrences_proven_by(state: AccountState, allocations: list[dict], account_id: str, paid_at: datetime,
                           policy: DunningPolicy) -> tuple[list[Decision], dict[str, str]]:
    """DN.OCCURRENCE: a payment made after the due date proves the bill was in arrears at that
    date, even when it is processed before the due-date check fires: decide by business time,
    not by arrival order. Returns those occurrences' decisions and every open occurrence by bill."""
    decisions: list[Decision] = []
    open_ids = {o.bill_id: o.occurrence_id for o in state.occurrences if not o.closed}
    opened_now = 0
    for allocation in allocations:
        bill = state.bills[allocation["billId"]]
        if bill.due_at < paid_at and state.occurrence_for(bill.bill_id) is None:
            clears = bill.outstanding == allocation["amountMinor"]
            decisions += open_occurrence(state, bill, account_id, policy, with_reminder=not clears, earlier_in_batch=opened_now)
            open_ids[bill.bill_id] = occurrence_id_for(account_id, bill.bill_id)
            opened_now += 1
    return decisions, open_ids


def _end_cleared_occurrences(state: AccountState, cleared: list[str], open_ids: dict[str, str], account_id: str,
                             paid_at: datetime, policy: DunningPolicy) -> list[Decision]:
    """DN.PAYMENT_STOPS: the occurrence of each bill paid in full ends (withdrawn first, then
    closed with its late fee); with nothing left overdue, restoration is requested."""
    decisions: list[Decision] = []
    closing = []
    for bill_id in cleared:
        bill = state.bills[bill_id]
        occurrence_id = open_ids.get(bill_id)
        if occurrence_id is None:
            continue
        if paid_at <= bill.due_at:
            decisions.append(_withdrawn_paid_in_time(state, occurrence_id, bill_id, account_id, paid_at))
        else:
            closing.append((occurrence_id, bill_id))
    for occurrence_id, bill_id in closing:
        bill = state.bills[bill_id]
        # An occurrence opened by this very payment is not in the state yet.
        occurrence = state.occurrence(occurrence_id) or Occurrence(occurrence_id, bill_id, bill.due_at, 0)
        decisions += close_occurrence(occurrence, bill, account_id, paid_at, policy, "PAID_IN_FULL")
    still_open = {o.occurrence_id for o in state.open_occurrences()} - {o for o, _ in closing}
    decisions += restoration_if_cleared(state, account_id, still_open, paid_at)
    return decisions


def _withdrawn_paid_in_time(state: AccountState, occurrence_id: str, bill_id: str, account_id: str,
                            paid_at: datetime) -> Decision:
    """Paid in time but processed after the due-date check fired: the occurrence never was.
    Withdrawn by a correcting decision, never by an edit (A.APPEND_ONLY)."""
    occurrence = state.occurrence(occurrence_id)
    return Decision(
        decision_type=OCCURRENCE_WITHDRAWN,
        rule_ids=("DN.OCCURRENCE",),
        outcome="withdrawn",
        reason_codes=("PAID_BEFORE_DUE",),
        business_time=paid_at,
        payload={"accountId": account_id, "occurrenceId": occurrence_id, "billId": bill_id},
        cancels_timers=tuple(sorted(occurrence.pending_timers)) if occurrence else (),
    )


def on_reversal(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    payment = event.payload
    original = payment["reversesPaymentId"]
    allocations = state.payments.get(original)
    account_id = payment["accountId"]
    at = payment["paymentDate"]
    if allocations is None:
        return [
            Decision(
                decision_type=PAYMENT_REVERSAL_IGNORED,
                rule_ids=("DN.PAYMENT_STOPS",),
                outcome="unknownPayment",
                reason_codes=("ORIGINAL_PAYMENT_NOT_APPLIED",),
                payload={"accountId": account_id, "paymentId": original},
            )
        ]
    applied = sum(amount for _, amount in allocations)
    credit_removed = min(state.credit, max(0, payment["amount"]["amountMinor"] - applied))
    decisions = [
        Decision(
            decision_type=PAYMENT_REVERSED,
            rule_ids=("DN.PAYMENT_STOPS",),
            outcome="reversed",
            business_time=at,
            payload={"accountId": account_id, "paymentId": original, "creditRemovedMinor": credit_removed},
        )
    ]
    for bill_id, _ in allocations:
        occurrence = state.occurrence_for(bill_id)
        bill = state.bills[bill_id]
        if occurrence and occurrence.closed:
            # DN.PAYMENT_STOPS: a bounced payment reopens the occurrence, with its original
            # anchor and offence count; reminders and escalation resume.
            reopened = Decision(
                decision_type=OCCURRENCE_REOPENED,
                rule_ids=("DN.OCCURRENCE", "DN.PAYMENT_STOPS"),
                outcome="reopened",
                reason_codes=("PAYMENT_REVERSED",),
                business_time=at,
                payload={"accountId": account_id, "occurrenceId": occurrence.occurrence_id, "billId": bill_id},
                timer=escalation_timer(account_id, occurrence.occurrence_id, occurrence.anchor, policy, attempt=len(state.payments))
                if occurrence.anchor + timedelta(days=policy.suspend_after_days) > at
                else None,
            )
            decisions.append(reopened)
            decisions.append(
                schedule_reminder(account_id, occurrence.occurrence_id, bill, occurrence.offence_count, at,
                                  sequence=occurrence.reminders_sent + 1, policy=policy, business_time=at)
            )
        elif occurrence is None and bill.due_at < at:
            decisions += open_occurrence(state, bill, account_id, policy, with_reminder=True)
    return decisions
