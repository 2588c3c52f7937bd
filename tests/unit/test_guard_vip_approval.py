"""CP4.IMPORTANT: a gold/diamond customer's suspension waits for an account manager (pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.billing_guard.domain.approval_queue import pending_approvals

from .guard_fixtures import Event, Guard, of_type
from .test_guard_suspension import AT, request

_n = [0]


def gold_request(tier="gold", manager="AM-7", **kwargs) -> Event:
    event = request(**kwargs)
    return Event(event.event_id, event.event_type, event.event_time,
                 {**event.payload, "customerTier": tier, "accountManagerId": manager})


def answer(request_id: str, verdict="approve", role="accountManager", when=AT + timedelta(hours=3)) -> Event:
    _n[0] += 1
    return Event(f"ev-approval-{_n[0]}", "billing.approval.v1", when,
                 {"approvalId": f"APR-{_n[0]}", "requestId": request_id, "accountId": "A1", "approverId": "AM-7",
                  "approverRole": role, "verdict": verdict, "reason": "spoke to the customer", "decidedAt": when})


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
    assert late[0]["reasonCodes"] == ["NO_SUCH_REQUEST_AWAITING_APPROVAL"]


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
