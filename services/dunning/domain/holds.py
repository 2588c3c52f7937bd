"""What dunning takes from the guard's published decisions (guard.decisions.v1):
dispute holds and their release (D.HOLD), credit notes (D.RESOLVE), and the answers to
suspension and restoration requests (CP4). Every other guard decision is not dunning's."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from schemas.decision_types import guard
from schemas.decision_types.dunning import (
    CREDIT_APPLIED, HOLD_APPLIED, HOLD_RELEASED, OCCURRENCE_WITHDRAWN, RESTORATION_RECORDED, SUSPENSION_ANSWERED,
)
from services.common.decider import Decision

from .account import AccountState, Bill
from .escalation import restoration_if_cleared
from .occurrences import close_occurrence, open_occurrence
from .policy import DunningPolicy

# The guard's decision types this service reacts to, by what they mean to dunning.
HOLD_TYPES = {guard.DISPUTE_OPENED}
RELEASE_TYPES = {guard.DISPUTE_RESOLVED, guard.DISPUTE_AUTO_CREDITED, guard.DISPUTE_CLOSED, guard.DISPUTE_CANCELLED}
CREDIT_TYPES = {guard.CREDIT_NOTE_ISSUED}
SUSPENSION_ANSWERS = {guard.SUSPENSION_APPROVED: True, guard.SUSPENSION_DENIED: False}
RESTORED_TYPES = {guard.RESTORATION_ORDERED}
RELEVANT = HOLD_TYPES | RELEASE_TYPES | CREDIT_TYPES | set(SUSPENSION_ANSWERS) | RESTORED_TYPES


def concerns_dunning(decision: dict) -> bool:
    return decision["decisionType"] in RELEVANT and "accountId" in decision["payload"]


def _amount(body: dict, *names: str) -> int:
    for name in names:
        value = body.get(name)
        if isinstance(value, int):
            return value
        if isinstance(value, dict) and isinstance(value.get("amountMinor"), int):
            return value["amountMinor"]
    return 0


@dataclass(frozen=True)
class GuardInput:
    """One of the guard's decisions, as dunning reads it."""

    decision: dict  # the guard's decision envelope
    body: dict  # its payload
    account_id: str
    bill: Bill | None  # the bill it names, if dunning tracks it
    ticket: str | None  # the dispute ticket it names
    ref: dict  # what every decision taken from it names: account, bill, guard decision, ticket
    at: datetime  # when the guard decided it


def on_guard_decision(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    decision = event.payload
    body = decision["payload"]
    account_id = body["accountId"]
    guard = GuardInput(
        decision=decision, body=body, account_id=account_id,
        bill=state.bills.get(body.get("billId", "")), ticket=body.get("ticketId"),
        ref={"accountId": account_id, "billId": body.get("billId"), "guardDecisionId": decision["decisionId"],
             "ticketId": body.get("ticketId")},
        at=event.event_time,
    )
    handler = _BY_GUARD_TYPE.get(decision["decisionType"])
    return handler(state, guard, policy) if handler is not None else []


def _hold(state: AccountState, guard: GuardInput, policy: DunningPolicy) -> list[Decision]:
    """D.HOLD: the disputed amount is held out of dunning, once per ticket."""
    bill, body = guard.bill, guard.body
    if bill is None or guard.ticket in state.holds:
        return []
    hold = body.get("hold") or {}
    wanted = _amount(hold, "amountMinor") or _amount(body, "disputedAmountMinor")
    held = max(0, min(wanted, bill.outstanding - bill.held))
    decisions = [Decision(decision_type=HOLD_APPLIED, rule_ids=("D.HOLD",), outcome="held",
                          payload={**guard.ref, "heldMinor": held})]
    occurrence = state.open_occurrence_for(bill.bill_id)
    if occurrence is not None and guard.at <= bill.due_at and held >= bill.undisputed:
        # Disputed in full before the due date but decided after the due-date check: the
        # arrears never were (DN.OCCURRENCE is net of disputes). Corrected, not edited.
        decisions.append(Decision(decision_type=OCCURRENCE_WITHDRAWN, rule_ids=("DN.OCCURRENCE", "D.HOLD"),
                                  outcome="withdrawn", reason_codes=("DISPUTED_BEFORE_DUE",),
                                  payload={**guard.ref, "occurrenceId": occurrence.occurrence_id},
                                  cancels_timers=tuple(sorted(occurrence.pending_timers))))
    return decisions


def _release(state: AccountState, guard: GuardInput, policy: DunningPolicy) -> list[Decision]:
    """D.HOLD: the dispute ended; its hold is released."""
    if guard.ticket not in state.holds:
        return []
    bill_id, amount = state.holds[guard.ticket]
    decisions = [Decision(decision_type=HOLD_RELEASED, rule_ids=("D.HOLD",), outcome="released",
                          payload={**guard.ref, "billId": bill_id, "releasedMinor": amount})]
    held_bill = state.bills[bill_id]
    # A bill that was wholly on hold at its due date had no occurrence; if the dispute is
    # not upheld in full, the arrears it hid start counting from the original due date.
    if held_bill.due_at < guard.at and state.occurrence_for(bill_id) is None and held_bill.outstanding > held_bill.held - amount:
        released = replace(held_bill, held=held_bill.held - amount)
        decisions += open_occurrence(state, released, guard.account_id, policy, with_reminder=True)
    return decisions


def _credit(state: AccountState, guard: GuardInput, policy: DunningPolicy) -> list[Decision]:
    """D.RESOLVE: a credit note reduces the bill; credited in full, its occurrence closes."""
    bill = guard.bill
    if bill is None:
        return []
    credit = min(_amount(guard.body, "amountMinor"), bill.outstanding)
    decisions = [Decision(decision_type=CREDIT_APPLIED, rule_ids=("D.RESOLVE", "DN.OCCURRENCE"),
                          outcome="credited", payload={**guard.ref, "creditMinor": credit})]
    occurrence = state.open_occurrence_for(bill.bill_id)
    if occurrence is not None and credit >= bill.outstanding:
        decisions += close_occurrence(occurrence, bill, guard.account_id, guard.at, policy, "CREDITED_IN_FULL")
        still_open = {o.occurrence_id for o in state.open_occurrences()} - {occurrence.occurrence_id}
        decisions += restoration_if_cleared(state, guard.account_id, still_open, guard.at)
    return decisions


def _suspension_answer(state: AccountState, guard: GuardInput, policy: DunningPolicy) -> list[Decision]:
    """DN.ESCALATE: the guard approved or denied dunning's suspension request (CP4)."""
    suspended = SUSPENSION_ANSWERS[guard.decision["decisionType"]]
    return [Decision(decision_type=SUSPENSION_ANSWERED, rule_ids=("DN.ESCALATE",),
                     outcome="suspended" if suspended else "denied",
                     reason_codes=tuple(guard.decision.get("reasonCodes", ())),
                     payload={**guard.ref, "suspended": suspended})]


def _restored(state: AccountState, guard: GuardInput, policy: DunningPolicy) -> list[Decision]:
    return [Decision(decision_type=RESTORATION_RECORDED, rule_ids=("CP4.RESTORE_48H",),
                     outcome="ordered", payload=guard.ref)]


# The guard's decision type -> what dunning decides from it.
_BY_GUARD_TYPE = {
    **dict.fromkeys(HOLD_TYPES, _hold),
    **dict.fromkeys(RELEASE_TYPES, _release),
    **dict.fromkeys(CREDIT_TYPES, _credit),
    **dict.fromkeys(SUSPENSION_ANSWERS, _suspension_answer),
    **dict.fromkeys(RESTORED_TYPES, _restored),
}
