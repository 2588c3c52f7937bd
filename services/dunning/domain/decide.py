"""Dunning rules (SPEC.md section 3): pure functions of (account state, input, policy)."""
from __future__ import annotations

from services.common.decider import Decision

from .account import AccountState
from .escalation import on_escalate
from .holds import on_guard_decision
from .occurrences import ESCALATE
from .payments import DUE_CHECK, on_bill, on_due_check, on_payment
from .policy import DunningPolicy
from .reminders import REMINDER_DUE, on_delivery, on_reminder_due

TIMERS = {DUE_CHECK: on_due_check, REMINDER_DUE: on_reminder_due, ESCALATE: on_escalate}


def decide(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    kind = event.event_type
    if kind == "billing.bill.v1":
        return on_bill(state, event, policy)
    if kind == "billing.payment.v1":
        return on_payment(state, event, policy)
    if kind == "dunning.delivery.v1":
        return on_delivery(state, event, policy)
    if kind == "guard.decisions.v1":
        return on_guard_decision(state, event, policy)
    if kind == "wuguan.timer.v1":
        return TIMERS[event.payload["kind"]](state, event, policy)
    return []
