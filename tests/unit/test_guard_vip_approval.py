"""CP4.IMPORTANT: a gold/diamond customer's suspension waits for an account manager (pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.billing_guard.domain.approval_queue import pending_approvals

from harness.guard import T0, Event, Guard, customer_change, dispute, fen, of_type
from .test_guard_suspension import AT, payment, request

_n = [0]


def gold_request(tier="gold", manager="AM-7", **kwargs) -> Event:
    event = request(**kwargs)
    return Event(event.event_id, event.event_type, event.event_time,
                 {**event.payload, "customerTier": tier, "accountManagerId": manager})


def answer(request_id: str, verdict="approve", role="accountManager", when=AT + timedelta(hours=3),
           decided=None, approver="AM-7") -> Event:
    _n[0] += 1
    return Event(f"ev-approval-{_n[0]}", "billing.approval.v1", when,
                 {"approvalId": f"APR-{_n[0]}", "requestId": request_id, "accountId": "A1", "approverId": approver,
                  "approverRole": role, "verdict": verdict, "reason": "spoke to the customer",
                  "decidedAt": decided or when})


@pytest.fixture
def held():
    g = Guard()
    out = g.feed(gold_request())
    assert [(d["decisionType"], d["outcome"], d["ruleIds"]) for d in out] == [
        ("guard.SuspensionAwaitingApproval", "awaitingApproval", ["CP4.IMPORTANT"])]
    return g, out[0]


def test_CP4_IMPORTANT_standard_tier_is_decided_at_once():
    assert Guard().feed(gold_request(tier="standard"))[0]["outcome"] == "approved"


def test_CP4_IMPORTANT_approval_by_the_account_manager_approves(held):
    g, waiting = held
    out = g.feed(answer(waiting["payload"]["requestId"]))
    assert [(d["decisionType"], d["outcome"]) for d in out] == [("guard.SuspensionApproved", "approved")]
    assert out[0]["payload"]["approvalId"] and out[0]["payload"]["approverRole"] == "accountManager"
    assert "CP4.IMPORTANT" in out[0]["ruleIds"]
    assert out[0]["payload"]["cancelsTimers"] == [waiting["payload"]["timer"]["timerId"]]
    assert g.fire_due_timers(AT + timedelta(days=3)) == []  # no timeout after the answer


def test_CP4_IMPORTANT_refusal_denies(held):
    g, waiting = held
    out = g.feed(answer(waiting["payload"]["requestId"], verdict="refuse"))
    assert [(d["decisionType"], d["reasonCodes"]) for d in out] == [("guard.SuspensionDenied", ["ACCOUNT_MANAGER_REFUSED"])]


def test_CP4_IMPORTANT_timeout_counts_as_refusal_and_escalates(held):
    g, waiting = held
    assert g.fire_due_timers(AT + timedelta(hours=47)) == []
    fired = g.fire_due_timers(AT + timedelta(hours=48))
    assert [(d["decisionType"], d["outcome"], d["reasonCodes"]) for d in fired] == [
        ("guard.SuspensionDenied", "denied", ["APPROVAL_TIMED_OUT"]),
        ("guard.SuspensionApprovalEscalated", "escalated", ["APPROVAL_TIMED_OUT"])]
    assert fired[1]["payload"]["escalateTo"] == "accountManagerSupervisor"
    late = g.feed(answer(waiting["payload"]["requestId"], when=AT + timedelta(hours=50)))
    assert late[0]["reasonCodes"] == ["APPROVAL_AFTER_TIMEOUT"]


def test_CP4_IMPORTANT_wrong_role_or_another_request_is_rejected_and_the_request_keeps_waiting(held):
    g, waiting = held
    wrong_role = g.feed(answer(waiting["payload"]["requestId"], role="counterClerk"))
    other = g.feed(answer("S-someone-else"))
    assert [(d["decisionType"], d["reasonCodes"]) for d in wrong_role + other] == [
        ("guard.SuspensionApprovalRejected", ["APPROVER_ROLE_NOT_ALLOWED"]),
        ("guard.SuspensionApprovalRejected", ["NO_SUCH_REQUEST_AWAITING_APPROVAL"])]
    assert pending_approvals(g.log)["AM-7"][0]["requestId"] == waiting["payload"]["requestId"]
    assert g.feed(answer(waiting["payload"]["requestId"]))[0]["outcome"] == "approved"
    assert pending_approvals(g.log) == {}


def _kinds(out):
    return [(d["decisionType"], d["reasonCodes"]) for d in out]


def test_CP4_IMPORTANT_an_answer_decided_after_the_due_time_is_late_whether_or_not_the_timer_fired():
    """H1: lateness is the answer's decidedAt against approvalDueAt, never the timer's firing."""
    late_at = AT + timedelta(hours=49)
    before_timer, after_timer = Guard(), Guard()
    rid = before_timer.feed(gold_request())[0]["payload"]["requestId"]
    after_timer.feed(gold_request())
    rid2 = after_timer.log[-1]["payload"]["requestId"]
    first = before_timer.feed(answer(rid, when=late_at))
    fired_after = before_timer.fire_due_timers(AT + timedelta(days=3))
    fired_first = after_timer.fire_due_timers(AT + timedelta(days=3))
    second = after_timer.feed(answer(rid2, when=late_at))
    assert _kinds(first) == _kinds(second) == [("guard.SuspensionApprovalRejected", ["APPROVAL_AFTER_TIMEOUT"])]
    assert _kinds(fired_after) == _kinds(fired_first) == [
        ("guard.SuspensionDenied", ["APPROVAL_TIMED_OUT"]), ("guard.SuspensionApprovalEscalated", ["APPROVAL_TIMED_OUT"])]


def test_CP4_IMPORTANT_a_late_answer_is_judged_by_decidedAt_not_by_when_it_arrives(held):
    g, waiting = held
    rid = waiting["payload"]["requestId"]
    # Delivered on time, but the manager decided after approvalDueAt: late.
    out = g.feed(answer(rid, when=AT + timedelta(hours=47), decided=AT + timedelta(hours=48, seconds=1)))
    assert _kinds(out) == [("guard.SuspensionApprovalRejected", ["APPROVAL_AFTER_TIMEOUT"])]


def test_CP4_IMPORTANT_second_answer_and_in_time_answer_after_timeout_get_their_own_reasons(held):
    g, waiting = held
    rid = waiting["payload"]["requestId"]
    assert g.feed(answer(rid))[0]["outcome"] == "approved"
    assert _kinds(g.feed(answer(rid, verdict="refuse"))) == [
        ("guard.SuspensionApprovalRejected", ["REQUEST_ALREADY_ANSWERED"])]
    g2 = Guard()
    rid2 = g2.feed(gold_request())[0]["payload"]["requestId"]
    g2.fire_due_timers(AT + timedelta(hours=48))
    # Decided in time, delivered after the timeout was decided.
    out = g2.feed(answer(rid2, when=AT + timedelta(hours=50), decided=AT + timedelta(hours=47)))
    assert _kinds(out) == [("guard.SuspensionApprovalRejected", ["APPROVAL_TIMEOUT_ALREADY_DECIDED"])]


def test_CP4_IMPORTANT_approval_rechecks_payments_and_disputes_as_they_stand_when_it_arrives(held):
    """H2: CP4.NO_PAYMENT_IN_FLIGHT and CP4.NET_OF_DISPUTES (D.HOLD) are re-run at the answer."""
    g, waiting = held
    g.feed(dispute("A1", "K9", "open", AT + timedelta(hours=1), billId="B1", disputedItems=["L1"],
                   disputedAmount=fen(5000)))
    g.feed(payment(AT + timedelta(hours=2), 100, status="pending"))
    out = g.feed(answer(waiting["payload"]["requestId"]))
    assert _kinds(out) == [("guard.SuspensionDenied", ["NOTHING_UNDISPUTED_OVERDUE", "PAYMENT_IN_FLIGHT"])]
    assert out[0]["payload"]["approvalId"] and out[0]["payload"]["undisputedOverdueMinor"] == 0
    assert out[0]["payload"]["cancelsTimers"] == [waiting["payload"]["timer"]["timerId"]]


def test_CP4_IMPORTANT_guard_own_customer_record_makes_a_customer_important_and_a_free_text_ref_approves_nothing():
    """H3: the CP1 customerTier kept from billing.customer.v1 counts; accountManagerApprovalRef does not."""
    g = Guard()
    g.feed(customer_change("A1", "customerTier", None, "diamond", T0, role="accountManager", approver="op-2"))
    out = g.feed(gold_request(tier="standard", approval="APPROVED-BY-PHONE"))
    assert [(d["decisionType"], d["outcome"]) for d in out] == [
        ("guard.SuspensionAwaitingApproval", "awaitingApproval")]
    assert out[0]["payload"]["customerTier"] == "diamond"  # the guard's own record, not the request's
    flagged = Guard()
    flagged.feed(customer_change("A1", "importantFlag", None, "true", T0, role="accountManager", approver="op-2"))
    assert flagged.feed(request(approval="APP-REF"))[0]["decisionType"] == "guard.SuspensionAwaitingApproval"


def test_CP4_IMPORTANT_approver_must_be_the_account_manager_unless_the_role_answers_for_anyone(held):
    """M5: approverId must be the request's accountManagerId; the policy's anyAccountApproverRoles may
    answer for anyone."""
    g, waiting = held
    rid = waiting["payload"]["requestId"]
    assert _kinds(g.feed(answer(rid, approver="AM-OTHER"))) == [
        ("guard.SuspensionApprovalRejected", ["APPROVER_NOT_ACCOUNT_MANAGER"])]
    out = g.feed(answer(rid, approver="SUP-1", role="accountManagerSupervisor"))
    assert [(d["decisionType"], d["outcome"]) for d in out] == [("guard.SuspensionApproved", "approved")]
