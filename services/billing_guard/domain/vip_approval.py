"""CP4.IMPORTANT: a suspension of an important customer (a tier the policy names, diamond and gold
by default, or the VIP flag, by the guard's own CP1 record or the request) waits for an account
manager's approval (billing.approval.v1).

Every path is a decision: the request is held (SuspensionAwaitingApproval, with a timer on the
business clock); an in-time approval from the request's account manager (or from a role the
policy lets answer for anyone) approves it if the CP4 checks still pass when it arrives, a
refusal denies it; the timeout counts as a refusal and escalates. An answer is rejected with its
reason when its role is not allowed, its approver is not the account manager, it was decided
after approvalDueAt (whether or not the timer has fired), its request was already answered or
timed out, or no such request was held.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from schemas.decision_types.guard import (
    SUSPENSION_APPROVAL_ESCALATED, SUSPENSION_APPROVAL_REJECTED, SUSPENSION_APPROVED, SUSPENSION_AWAITING_APPROVAL,
    SUSPENSION_DENIED,
)
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339, rfc3339

from . import suspension
from .account import AccountState
from .policy import GuardPolicy

APPROVAL_TIMER = "approvalTimeout"
TYPES = frozenset({SUSPENSION_AWAITING_APPROVAL, SUSPENSION_APPROVAL_REJECTED, SUSPENSION_APPROVAL_ESCALATED})
RULES = ("CP4.IMPORTANT",)


def pending(state: AccountState) -> dict:
    """requestId -> the held request's decision body (with its timer), while it waits."""
    return state.extra.get("approvals") or {}


def settled(state: AccountState) -> dict:
    """requestId -> {"status", "approvalDueAt"} of a held request that was answered or timed out:
    kept so a second or a late answer is told why it changes nothing."""
    return state.extra.get("approvalsSettled") or {}


def needs_approval(state: AccountState, request: dict, policy: GuardPolicy) -> bool:
    """Important by the guard's own CP1 record (importantFlag, customerTier from billing.customer.v1)
    or by the request. A free-text approval reference on the request is no approval: only an
    answer on billing.approval.v1 is (CP4.IMPORTANT)."""
    return (suspension.important(state) or bool(request.get("important"))
            or state.fields.get("customerTier") in policy.important_tiers
            or request.get("customerTier") in policy.important_tiers)


def decide_request(state: AccountState, request: dict, event, policy: GuardPolicy) -> list[Decision]:
    if not needs_approval(state, request, policy):
        return suspension.decide_request(state, request, event, policy)
    reasons, body = suspension.checks(state, request, event.event_time, policy)
    if reasons:  # denied whatever a manager would say: no one is asked
        return [Decision(SUSPENSION_DENIED, suspension.RULES, "denied", body,
                         (*reasons, "ACCOUNT_MANAGER_APPROVAL_MISSING"))]
    due = event.event_time + timedelta(hours=policy.approval_timeout_hours)
    held = {**body, "customerTier": state.fields.get("customerTier") or request.get("customerTier"),
            "accountManagerId": request.get("accountManagerId"),
            "arrearsComputedAt": rfc3339(request["arrearsComputedAt"]),
            "paymentDueDate": rfc3339(request["paymentDueDate"]), "remindersDelivered": request["remindersDelivered"],
            "approvalDueAt": rfc3339(due), "approverRoles": sorted(policy.approver_roles),
            "anyAccountApproverRoles": sorted(policy.any_account_approver_roles)}
    timer = Timer(derived_id(event.event_id, APPROVAL_TIMER), due, APPROVAL_TIMER, body["accountId"],
                  {"accountId": body["accountId"], "requestId": body["requestId"]})
    return [Decision(SUSPENSION_AWAITING_APPROVAL, RULES, "awaitingApproval", held,
                     ("IMPORTANT_CUSTOMER_NEEDS_ACCOUNT_MANAGER",),
                     timer=timer)]


def answer_problem(state: AccountState, p: dict, policy: GuardPolicy) -> str | None:
    """Why an answer cannot decide its request, or None. Lateness is judged by the answer's own
    decidedAt against approvalDueAt, never by whether the timeout timer has fired yet, so the
    outcome is a function of the inputs alone."""
    if p["approverRole"] not in policy.approver_roles:
        return "APPROVER_ROLE_NOT_ALLOWED"
    held = pending(state).get(p["requestId"])
    done = settled(state).get(p["requestId"])
    if held is None and done is None:
        return "NO_SUCH_REQUEST_AWAITING_APPROVAL"
    if p["decidedAt"] > parse_rfc3339((held or done)["approvalDueAt"]):
        return "APPROVAL_AFTER_TIMEOUT"
    if done is not None:
        # In time by its decidedAt, but delivered after the timeout or another answer was decided.
        return "APPROVAL_TIMEOUT_ALREADY_DECIDED" if done["status"] == "timedOut" else "REQUEST_ALREADY_ANSWERED"
    if p["approverId"] != held.get("accountManagerId") and p["approverRole"] not in policy.any_account_approver_roles:
        return "APPROVER_NOT_ACCOUNT_MANAGER"
    return None


def decide_answer(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    """billing.approval.v1: approve, refuse, or reject the answer itself with its reason. An
    approval re-runs the CP4 checks as they stand when it arrives (payments, disputes)."""
    p = event.payload
    answer = {"approvalId": p["approvalId"], "approverId": p["approverId"], "approverRole": p["approverRole"],
              "verdict": p["verdict"], "approvalReason": p["reason"], "decidedAt": rfc3339(p["decidedAt"])}
    problem = answer_problem(state, p, policy)
    if problem:
        return [Decision(SUSPENSION_APPROVAL_REJECTED, RULES, "rejected",
                         {"requestId": p["requestId"], "accountId": p["accountId"], **answer}, (problem,))]
    held = pending(state)[p["requestId"]]
    body = _request_body(held)
    cancels = (held["timer"]["timerId"],)
    if p["verdict"] == "refuse":
        return [Decision(SUSPENSION_DENIED, suspension.RULES, "denied", {**body, **answer},
                         ("ACCOUNT_MANAGER_REFUSED",), cancels_timers=cancels)]
    reasons, rechecked = suspension.checks(state, _request_of(held), event.event_time, policy)
    if reasons:
        return [Decision(SUSPENSION_DENIED, suspension.RULES, "denied", {**rechecked, **answer}, tuple(reasons),
                         cancels_timers=cancels)]
    return [suspension.approved({**rechecked, **answer}, event.event_time, event.event_id, policy, cancels=cancels)]


def _request_of(held: dict) -> dict:
    """The CP4 request a held decision stands for, to re-run its checks."""
    return {"requestId": held["requestId"], "accountId": held["accountId"], "billId": held["billId"],
            "overdueMinor": held["overdueMinor"], "lateFeeMinor": held["lateFeeMinor"],
            "agreedOverdueDays": held["overduePeriodDays"], "remindersDelivered": held["remindersDelivered"],
            "paymentDueDate": parse_rfc3339(held["paymentDueDate"]),
            "arrearsComputedAt": parse_rfc3339(held["arrearsComputedAt"])}


def on_timeout(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    """No answer in time: a refusal, and the request goes to the policy's escalation role."""
    held = pending(state).get(event.payload["data"]["requestId"])
    if held is None:
        return []
    body = _request_body(held)
    return [
        Decision(SUSPENSION_DENIED, suspension.RULES, "denied", {**body, "approvalDueAt": held["approvalDueAt"]},
                 ("APPROVAL_TIMED_OUT",)),
        Decision(SUSPENSION_APPROVAL_ESCALATED, RULES, "escalated",
                 {"requestId": held["requestId"], "accountId": held["accountId"],
                  "accountManagerId": held.get("accountManagerId"), "escalateTo": policy.approval_escalate_to,
                  "approvalDueAt": held["approvalDueAt"]}, ("APPROVAL_TIMED_OUT",)),
    ]


def evolve_approval(state: AccountState, decision: dict) -> AccountState:
    """Folds the held requests: added when held; moved to the settled ones by the answer or the
    timeout that decides them."""
    kind, body = decision["decisionType"], decision["payload"]
    held = pending(state)
    if kind == SUSPENSION_AWAITING_APPROVAL:
        held = {**held, body["requestId"]: body}
        return replace(state, extra={**state.extra, "approvals": held})
    if kind in (SUSPENSION_APPROVED, SUSPENSION_DENIED) and body.get("requestId") in held:
        timed_out = "APPROVAL_TIMED_OUT" in decision.get("reasonCodes", ())
        done = {**settled(state), body["requestId"]: {
            "status": "timedOut" if timed_out else "answered",
            "approvalDueAt": held[body["requestId"]]["approvalDueAt"]}}
        held = {k: v for k, v in held.items() if k != body["requestId"]}
        return replace(state, extra={**state.extra, "approvals": held, "approvalsSettled": done})
    return state


def _request_body(held: dict) -> dict:
    """The CP4 body of a held request, as SuspensionApproved / SuspensionDenied carry it."""
    return {k: held[k] for k in ("requestId", "accountId", "billId", "overdueMinor", "undisputedOverdueMinor",
                                 "overduePeriodDays", "lateFeeMinor")}
