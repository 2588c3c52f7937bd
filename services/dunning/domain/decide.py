"""Dunning rules (SPEC.md section 3): pure functions of (account state, input, policy).

One handler per input topic (``HANDLERS``) and, for fired timers, per timer kind (``TIMERS``):
payments.py (bills and payments), reminders.py (reminders and their delivery), escalation.py
(suspension requests), holds.py (what the guard's decisions mean to dunning).
"""
from __future__ import annotations

from collections.abc import Callable

from services.common.decider import Decision

from .account import AccountState
from .escalation import on_escalate
from .holds import on_guard_decision
from .occurrences import ESCALATE
from .payments import DUE_CHECK, on_bill, on_due_check, on_payment
from .policy import DunningPolicy
from .reminders import REMINDER_DUE, on_delivery, on_reminder_due

Handler = Callable[[AccountState, object, DunningPolicy], list[Decision]]

TIMERS: dict[str, Handler] = {DUE_CHECK: on_due_check, REMINDER_DUE: on_reminder_due, ESCALATE: on_escalate}


def on_timer(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    return TIMERS[event.payload["kind"]](state, event, policy)


HANDLERS: dict[str, Handler] = {
    "billing.bill.v1": on_bill,
    "billing.payment.v1": on_payment,
    "dunning.delivery.v1": on_delivery,
    "guard.decisions.v1": on_guard_decision,
    "wuguan.timer.v1": on_timer,
}


def decide(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    handler = HANDLERS.get(event.event_type)
    return handler(state, event, policy) if handler is not None else []
