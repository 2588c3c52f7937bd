"""What dunning takes from the guard's published decisions (guard.decisions.v1):
dispute holds and their release (D.HOLD), credit notes (D.RESOLVE), and the answers to
suspension and restoration requests (CP4). Every other guard decision is not dunning's."""
from __future__ import annotations

from dataclasses import replace

from services.billing_guard.domain import decision_types as guard
from services.common.decider import Decision

from .account import AccountState
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


def on_guard_decision(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    decision = event.payload
    kind, body = decision["decisionType"], decision["payload"]
    account_id = body["accountId"]
    bill = state.bills.get(body.get("billId", ""))
    ref = {"accountId": account_id, "billId": body.get("billId"), "guardDecisionId": decision["decisionId"],
           "ticketId": body.get("ticketId")}
    ticket = body.get("ticketId")
    if kind in HOLD_TYPES and bill is not None and ticket not in state.holds:
        hold = body.get("hold") or {}
        wanted = _amount(hold, "amountMinor") or _amount(body, "disputedAmountMinor")
        held = max(0, min(wanted, bill.outstanding - bill.held))
        decisions = [Decision(decision_type="dunning.HoldApplied", rule_ids=("D.HOLD",), outcome="held",
                              payload={**ref, "heldMinor": held})]
        occurrence = state.open_occurrence_for(bill.bill_id)
        if occurrence is not None and event.event_time <= bill.due_at and held >= bill.undisputed:
            # Disputed in full before the due date but decided after the due-date check: the
            # arrears never were (DN.OCCURRENCE is net of disputes). Corrected, not edited.
            decisions.append(Decision(decision_type="dunning.OccurrenceWithdrawn", rule_ids=("DN.OCCURRENCE", "D.HOLD"),
                                      outcome="withdrawn", reason_codes=("DISPUTED_BEFORE_DUE",),
                                      payload={**ref, "occurrenceId": occurrence.occurrence_id},
                                      cancels_timers=tuple(sorted(occurrence.pending_timers))))
        return decisions
    if kind in RELEASE_TYPES and ticket in state.holds:
        bill_id, amount = state.holds[ticket]
        decisions = [Decision(decision_type="dunning.HoldReleased", rule_ids=("D.HOLD",), outcome="released",
                              payload={**ref, "billId": bill_id, "releasedMinor": amount})]
        held_bill = state.bills[bill_id]
        # A bill that was wholly on hold at its due date had no occurrence; if the dispute is
        # not upheld in full, the arrears it hid start counting from the original due date.
        if held_bill.due_at < event.event_time and state.occurrence_for(bill_id) is None and held_bill.outstanding > held_bill.held - amount:
            released = replace(held_bill, held=held_bill.held - amount)
            decisions += open_occurrence(state, released, account_id, policy, with_reminder=True)
        return decisions
    if kind in CREDIT_TYPES and bill is not None:
        credit = min(_amount(body, "amountMinor"), bill.outstanding)
        decisions = [Decision(decision_type="dunning.CreditApplied", rule_ids=("D.RESOLVE", "DN.OCCURRENCE"),
                              outcome="credited", payload={**ref, "creditMinor": credit})]
        occurrence = state.open_occurrence_for(bill.bill_id)
        if occurrence is not None and credit >= bill.outstanding:
            decisions += close_occurrence(occurrence, bill, account_id, event.event_time, policy, "CREDITED_IN_FULL")
            still_open = {o.occurrence_id for o in state.open_occurrences()} - {occurrence.occurrence_id}
            decisions += restoration_if_cleared(state, account_id, still_open, event.event_time)
        return decisions
    if kind in SUSPENSION_ANSWERS:
        suspended = SUSPENSION_ANSWERS[kind]
        return [Decision(decision_type="dunning.SuspensionAnswered", rule_ids=("DN.ESCALATE",),
                         outcome="suspended" if suspended else "denied",
                         reason_codes=tuple(decision.get("reasonCodes", ())),
                         payload={**ref, "suspended": suspended})]
    if kind in RESTORED_TYPES:
        return [Decision(decision_type="dunning.RestorationRecorded", rule_ids=("CP4.RESTORE_48H",),
                         outcome="ordered", payload=ref)]
    return []
