"""evolve: an account's state folded from dunning's own decisions, one small fold per decision
type (``FOLDS``). Pure; states are immutable, so a batch that fails to commit never leaves a
half-applied state in the runtime's cache.

Every decision may cancel timers (``cancelsTimers``) before its own fold applies; a decision
type with no fold (PaymentReversalIgnored) changes nothing else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from schemas.decision_types import dunning as types
from services.common.timefmt import parse_rfc3339

from .account import AccountState, Bill, Occurrence

# (state, decision payload, whole decision envelope) -> state
Fold = Callable[[AccountState, dict, dict], AccountState]


def evolve(state: AccountState, decision: dict) -> AccountState:
    body = decision["payload"]
    state = _cancel_timers(state, body.get("cancelsTimers", ()))
    fold = FOLDS.get(decision["decisionType"])
    return fold(state, body, decision) if fold is not None else state


def _cancel_timers(state: AccountState, timer_ids) -> AccountState:
    cancelled = set(timer_ids)
    if not cancelled:
        return state
    return replace(
        state,
        occurrences=tuple(replace(o, pending_timers=o.pending_timers - cancelled) for o in state.occurrences),
    )


def _business_time(decision: dict) -> datetime:
    return parse_rfc3339(decision["businessTime"])


def _replace_occurrence(state: AccountState, occurrence_id: str, **changes) -> tuple:
    return tuple(replace(o, **changes) if o.occurrence_id == occurrence_id else o for o in state.occurrences)


def _new_timer(body: dict) -> frozenset:
    """The timer a decision sets, if any (the occurrence waits for it)."""
    timer = body.get("timer")
    return frozenset({timer["timerId"]}) if timer else frozenset()


def _with_amounts(state: AccountState, changes: dict, at: datetime, **more) -> AccountState:
    """Apply paid/credited/held deltas per bill, remembering when (business time) they applied."""
    bills = dict(state.bills)
    for bill_id, delta in changes.items():
        bill = bills[bill_id]
        paid, credited, held = delta.get("paid", 0), delta.get("credited", 0), delta.get("held", 0)
        bills[bill_id] = replace(
            bill, paid=bill.paid + paid, credited=bill.credited + credited, held=bill.held + held,
            changes=bill.changes + ((at, paid, credited, held),),
        )
    return replace(state, bills=bills, **more)


# --- bills, payments, holds and credits (DN.OCCURRENCE, DN.PAYMENT_STOPS, D.HOLD, D.RESOLVE) --

def _bill_tracked(state: AccountState, body: dict, decision: dict) -> AccountState:
    bill = Bill(
        bill_id=body["billId"],
        amount_due=body["amountDueMinor"],
        paid=body["creditAppliedMinor"],
        due_at=parse_rfc3339(body["paymentDueDate"]),
        credit_level=body["creditLevel"],
        tier=body["customerTier"],
        important=body["important"],
        account_manager_id=body.get("accountManagerId"),
        changes=((_business_time(decision), body["creditAppliedMinor"], 0, 0),),
    )
    return replace(state, bills={**state.bills, bill.bill_id: bill}, credit=state.credit - body["creditAppliedMinor"])


def _payment_applied(state: AccountState, body: dict, decision: dict) -> AccountState:
    allocations = tuple((a["billId"], a["amountMinor"]) for a in body["allocations"])
    return _with_amounts(
        state, {b: {"paid": amount} for b, amount in allocations}, _business_time(decision),
        payments={**state.payments, body["paymentId"]: allocations},
        credit=state.credit + body["creditMinor"],
    )


def _payment_reversed(state: AccountState, body: dict, decision: dict) -> AccountState:
    allocations = state.payments.get(body["paymentId"], ())
    return _with_amounts(
        state, {b: {"paid": -amount} for b, amount in allocations}, _business_time(decision),
        credit=state.credit - body["creditRemovedMinor"],
    )


def _hold_applied(state: AccountState, body: dict, decision: dict) -> AccountState:
    holds = {**state.holds, body["ticketId"]: (body["billId"], body["heldMinor"])}
    return _with_amounts(state, {body["billId"]: {"held": body["heldMinor"]}}, _business_time(decision), holds=holds)


def _hold_released(state: AccountState, body: dict, decision: dict) -> AccountState:
    holds = {t: h for t, h in state.holds.items() if t != body["ticketId"]}
    return _with_amounts(state, {body["billId"]: {"held": -body["releasedMinor"]}}, _business_time(decision), holds=holds)


def _credit_applied(state: AccountState, body: dict, decision: dict) -> AccountState:
    return _with_amounts(state, {body["billId"]: {"credited": body["creditMinor"]}}, _business_time(decision))


# --- occurrences and late fees (DN.OCCURRENCE, DN.LATE_FEE) ----------------------------------

def _occurrence_opened(state: AccountState, body: dict, decision: dict) -> AccountState:
    occurrence = Occurrence(
        occurrence_id=body["occurrenceId"],
        bill_id=body["billId"],
        anchor=parse_rfc3339(body["anchorDate"]),
        offence_count=body["offenceCount"],
        pending_timers=_new_timer(body),
    )
    return replace(state, occurrences=state.occurrences + (occurrence,))


def _occurrence_closed(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, occurrences=_replace_occurrence(state, body["occurrenceId"], closed=True, pending_timers=frozenset()))


def _occurrence_withdrawn(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, occurrences=tuple(o for o in state.occurrences if o.occurrence_id != body["occurrenceId"]))


def _occurrence_reopened(state: AccountState, body: dict, decision: dict) -> AccountState:
    occurrence = state.occurrence(body["occurrenceId"])
    return replace(state, occurrences=_replace_occurrence(
        state, body["occurrenceId"], closed=False, pending_timers=occurrence.pending_timers | _new_timer(body),
    ))


def _late_fee_charged(state: AccountState, body: dict, decision: dict) -> AccountState:
    occurrence = state.occurrence(body["occurrenceId"])
    return replace(state, occurrences=_replace_occurrence(
        state, body["occurrenceId"], fee_charged=occurrence.fee_charged + body["feeMinor"],
    ))


# --- reminders and escalation timers (DN.FIRST_LETTER, DN.REPEAT_VOICE, DN.ESCALATE) ---------

def _reminder_scheduled(state: AccountState, body: dict, decision: dict) -> AccountState:
    occurrence = state.occurrence(body["occurrenceId"])
    return replace(state, occurrences=_replace_occurrence(
        state, body["occurrenceId"], pending_timers=occurrence.pending_timers | {body["timer"]["timerId"]},
    ))


def _timer_fired(state: AccountState, body: dict, *, sent: int = 0) -> AccountState | None:
    """The occurrence's timer that fired is no longer pending; None when the occurrence is gone."""
    occurrence = state.occurrence(body["occurrenceId"])
    if occurrence is None:
        return None
    fired = frozenset({body["firedTimerId"]}) if body.get("firedTimerId") else frozenset()
    return replace(state, occurrences=_replace_occurrence(
        state, body["occurrenceId"], pending_timers=occurrence.pending_timers - fired,
        reminders_sent=occurrence.reminders_sent + sent,
    ))


def _timer_skipped(state: AccountState, body: dict, decision: dict) -> AccountState:
    fired = _timer_fired(state, body)
    return state if fired is None else fired


def _reminder_due(state: AccountState, body: dict, decision: dict) -> AccountState:
    fired = _timer_fired(state, body, sent=1)
    if fired is None:
        return state
    return replace(fired, reminders={**fired.reminders, decision["decisionId"]: body["occurrenceId"]})


def _suspension_requested(state: AccountState, body: dict, decision: dict) -> AccountState:
    fired = _timer_fired(state, body)
    return state if fired is None else replace(fired, suspension="requested")


def _delivery_recorded(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, deliveries={**state.deliveries, body["reminderId"]: body["delivered"]})


# --- suspension and restoration (DN.ESCALATE, CP4.RESTORE_48H) -------------------------------

def _suspension_answered(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, suspension="suspended" if body["suspended"] else "none")


def _restoration_requested(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, suspension="restorationRequested")


def _restoration_recorded(state: AccountState, body: dict, decision: dict) -> AccountState:
    return replace(state, suspension="none")


FOLDS: dict[str, Fold] = {
    types.BILL_TRACKED: _bill_tracked,
    types.PAYMENT_APPLIED: _payment_applied,
    types.PAYMENT_REVERSED: _payment_reversed,
    types.HOLD_APPLIED: _hold_applied,
    types.HOLD_RELEASED: _hold_released,
    types.CREDIT_APPLIED: _credit_applied,
    types.OCCURRENCE_OPENED: _occurrence_opened,
    types.OCCURRENCE_CLOSED: _occurrence_closed,
    types.OCCURRENCE_WITHDRAWN: _occurrence_withdrawn,
    types.OCCURRENCE_REOPENED: _occurrence_reopened,
    types.LATE_FEE_CHARGED: _late_fee_charged,
    types.REMINDER_SCHEDULED: _reminder_scheduled,
    types.REMINDER_DUE: _reminder_due,
    types.REMINDER_SKIPPED: _timer_skipped,
    types.ESCALATION_SKIPPED: _timer_skipped,
    types.SUSPENSION_REQUESTED: _suspension_requested,
    types.DELIVERY_RECORDED: _delivery_recorded,
    types.SUSPENSION_ANSWERED: _suspension_answered,
    types.RESTORATION_REQUESTED: _restoration_requested,
    types.RESTORATION_RECORDED: _restoration_recorded,
}
