"""Dunning rules (SPEC.md section 3): pure functions of (account state, input, policy)."""
from __future__ import annotations

from datetime import datetime, timedelta

from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import rfc3339

from .account import AccountState
from .policy import DunningPolicy

DUE_CHECK = "dueCheck"


def _months_before(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, 28)  # every month has a 28th; look-back precision of days is enough
    return moment.replace(year=year, month=month + 1, day=day)


def offence_count(state: AccountState, anchor: datetime, lookback_months: int) -> int:
    """DN.OCCURRENCE: occurrences anchored inside the look-back window, the new one included."""
    since = _months_before(anchor, lookback_months)
    return 1 + sum(1 for o in state.occurrences if since < o.anchor <= anchor)


def outside_quiet_hours(moment: datetime, policy: DunningPolicy) -> datetime:
    """DN.QUIET_HOURS: a reminder falling between quiet start and end moves to quiet end."""
    local = moment.astimezone(policy.timezone)
    start, end = policy.quiet_start, policy.quiet_end
    clock = local.timetz().replace(tzinfo=None)
    if clock >= start:
        local = (local + timedelta(days=1)).replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    elif clock < end:
        local = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return local


def on_bill(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    bill = event.payload
    if bill["billId"] in state.bills:
        return []  # a re-issued bill with the same id changes nothing already tracked
    amount = bill["amountDue"]["amountMinor"]
    credit_applied = min(state.credit, amount)
    due_at = bill["paymentDueDate"]
    return [
        Decision(
            decision_type="dunning.BillTracked",
            rule_ids=("DN.OCCURRENCE",),
            outcome="tracking" if amount > credit_applied else "settledByCredit",
            payload={
                "accountId": bill["accountId"],
                "billId": bill["billId"],
                "amountDueMinor": amount,
                "creditAppliedMinor": credit_applied,
                "paymentDueDate": rfc3339(due_at),
                "creditLevel": bill["customer"]["creditLevel"],
                "customerTier": bill["customer"]["customerTier"],
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
        return []  # only money received moves arrears; a pending payment is noted by CP4
    if status == "reversed":
        return on_reversal(state, event)
    if payment["paymentId"] in state.payments:
        return []
    account_id = payment["accountId"]
    paid_at = payment["paymentDate"]
    allocations, credit = _allocate(state, payment["amount"]["amountMinor"], payment.get("billId"))
    decisions: list[Decision] = []
    open_occurrences = {o.bill_id: o.occurrence_id for o in state.occurrences if not o.closed}
    # A payment made after the due date proves the bill was in arrears at that date, even
    # when it is processed before the due-date check fires: decide by business time, not
    # by arrival order.
    opened_now = 0
    for allocation in allocations:
        bill = state.bills[allocation["billId"]]
        if bill.due_at < paid_at and state.occurrence_for(bill.bill_id) is None:
            clears = bill.outstanding == allocation["amountMinor"]
            decisions += _occurrence_decisions(
                state, bill, account_id, policy, with_reminder=not clears, earlier_in_batch=opened_now
            )
            open_occurrences[bill.bill_id] = occurrence_id_for(account_id, bill.bill_id)
            opened_now += 1
    decisions.append(
        Decision(
            decision_type="dunning.PaymentApplied",
            rule_ids=("DN.PAYMENT_STOPS",),
            outcome="applied",
            payload={
                "accountId": account_id,
                "paymentId": payment["paymentId"],
                "amountMinor": payment["amount"]["amountMinor"],
                "allocations": allocations,
                "creditMinor": credit,
            },
            cancels_timers=tuple(
                due_check_timer_id(account_id, a["billId"])
                for a in allocations
                if state.bills[a["billId"]].outstanding == a["amountMinor"]
            ),
        )
    )
    for allocation in allocations:
        bill = state.bills[allocation["billId"]]
        occurrence_id = open_occurrences.get(bill.bill_id)
        if occurrence_id and bill.outstanding == allocation["amountMinor"] and paid_at <= bill.due_at:
            # Paid in time but processed after the due-date check fired: the occurrence
            # never was. Withdrawn by a correcting decision, never by an edit (A.APPEND_ONLY).
            decisions.append(
                Decision(
                    decision_type="dunning.OccurrenceWithdrawn",
                    rule_ids=("DN.OCCURRENCE",),
                    outcome="withdrawn",
                    reason_codes=("PAID_BEFORE_DUE",),
                    payload={"accountId": account_id, "occurrenceId": occurrence_id, "billId": bill.bill_id},
                )
            )
        elif occurrence_id and bill.outstanding == allocation["amountMinor"]:
            decisions.append(
                Decision(
                    decision_type="dunning.OccurrenceClosed",
                    rule_ids=("DN.OCCURRENCE", "DN.PAYMENT_STOPS"),
                    outcome="paidInFull",
                    payload={"accountId": account_id, "occurrenceId": occurrence_id, "billId": bill.bill_id},
                )
            )
    return decisions


def on_reversal(state: AccountState, event) -> list[Decision]:
    payment = event.payload
    original = payment["reversesPaymentId"]
    allocations = state.payments.get(original)
    if allocations is None:
        return [
            Decision(
                decision_type="dunning.PaymentReversalIgnored",
                rule_ids=("DN.PAYMENT_STOPS",),
                outcome="unknownPayment",
                reason_codes=("ORIGINAL_PAYMENT_NOT_APPLIED",),
                payload={"accountId": payment["accountId"], "paymentId": original},
            )
        ]
    applied = sum(amount for _, amount in allocations)
    credit_removed = min(state.credit, max(0, payment["amount"]["amountMinor"] - applied))
    decisions = [
        Decision(
            decision_type="dunning.PaymentReversed",
            rule_ids=("DN.PAYMENT_STOPS",),
            outcome="reversed",
            payload={"accountId": payment["accountId"], "paymentId": original, "creditRemovedMinor": credit_removed},
        )
    ]
    for bill_id, _ in allocations:
        occurrence = state.occurrence_for(bill_id)
        if occurrence and occurrence.closed:
            decisions.append(
                Decision(
                    decision_type="dunning.OccurrenceReopened",
                    rule_ids=("DN.OCCURRENCE", "DN.PAYMENT_STOPS"),
                    outcome="reopened",
                    reason_codes=("PAYMENT_REVERSED",),
                    payload={"accountId": payment["accountId"], "occurrenceId": occurrence.occurrence_id, "billId": bill_id},
                )
            )
    return decisions


def due_check_timer_id(account_id: str, bill_id: str) -> str:
    return derived_id("dunning", account_id, bill_id, DUE_CHECK)


def occurrence_id_for(account_id: str, bill_id: str) -> str:
    return derived_id("occurrence", account_id, bill_id)


def _occurrence_decisions(
    state: AccountState, bill, account_id: str, policy: DunningPolicy, *, with_reminder: bool, earlier_in_batch: int = 0
) -> list[Decision]:
    """DN.OCCURRENCE opened at the bill's due date, and its first reminder by offence count."""
    anchor = bill.due_at
    count = offence_count(state, anchor, policy.lookback_months) + earlier_in_batch
    occurrence_id = occurrence_id_for(account_id, bill.bill_id)
    decisions = [
        Decision(
            decision_type="dunning.OccurrenceOpened",
            rule_ids=("DN.OCCURRENCE",),
            outcome="opened",
            business_time=anchor,
            payload={
                "accountId": account_id,
                "occurrenceId": occurrence_id,
                "billId": bill.bill_id,
                "anchorDate": rfc3339(anchor),
                "overdueMinor": bill.outstanding,
                "offenceCount": count,
                "lookbackMonths": policy.lookback_months,
            },
        )
    ]
    if not with_reminder:
        return decisions
    treatment = policy.treatment_for(bill.credit_level, bill.tier)
    wanted_at = anchor + timedelta(days=treatment.grace_days)
    reminder_at = outside_quiet_hours(wanted_at, policy)
    if count == 1:
        channel, voice_allowed, rules = treatment.first_offence_channel, False, ("DN.FIRST_LETTER", "DN.CREDIT_LEVEL")
    else:
        channel, voice_allowed, rules = treatment.repeat_channels[0], True, ("DN.REPEAT_VOICE", "DN.CREDIT_LEVEL")
    decisions.append(
        Decision(
            decision_type="dunning.ReminderScheduled",
            rule_ids=rules + (("DN.QUIET_HOURS",) if reminder_at != wanted_at else ()),
            outcome="scheduled",
            reason_codes=("FIRST_OFFENCE",) if count == 1 else ("REPEAT_OFFENCE",),
            business_time=anchor,
            payload={
                "accountId": account_id,
                "occurrenceId": occurrence_id,
                "billId": bill.bill_id,
                "offenceCount": count,
                "channel": channel,
                "voiceAllowed": voice_allowed,
                "treatment": treatment.name,
                "scheduledFor": rfc3339(reminder_at),
            },
        )
    )
    return decisions


def on_due_check(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    data = event.payload["data"]
    bill = state.bills.get(data["billId"])
    if bill is None or bill.outstanding == 0 or state.occurrence_for(bill.bill_id):
        return []
    return _occurrence_decisions(state, bill, data["accountId"], policy, with_reminder=True)


def decide(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    if event.event_type == "billing.bill.v1":
        return on_bill(state, event, policy)
    if event.event_type == "billing.payment.v1":
        return on_payment(state, event, policy)
    if event.event_type == "wuguan.timer.v1" and event.payload["kind"] == DUE_CHECK:
        return on_due_check(state, event, policy)
    return []
