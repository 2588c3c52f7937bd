"""CP4.IMPORTANT: a suspension of an important customer (a tier the policy names, diamond and gold
by default, or the VIP flag) waits for an account manager's approval (billing.approval.v1).

Every path is a decision: the request is held (SuspensionAwaitingApproval, with a timer on the
business clock); an approval from an allowed role approves it, a refusal denies it; the timeout
counts as a refusal and escalates; an answer from a role the policy does not allow, or one
naming no request of the account that is still waiting, is rejected with its reason and leaves
the request waiting.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339, rfc3339

from . import suspension
from .account import AccountState
from .policy import GuardPolicy

AWAITING = "guard.SuspensionAwaitingApproval"
ANSWER_REJECTED = "guard.SuspensionApprovalRejected"
ESCALATED = "guard.SuspensionApprovalEscalated"
APPROVAL_TIMER = "approvalTimeout"
TYPES = frozenset({AWAITING, ANSWER_REJECTED, ESCALATED})
RULES = ("CP4.IMPORTANT",)


def pending(state: AccountState) -> dict:
    """requestId -> the held request's decision body (with its timer)."""
    return state.extra.get("approvals") or {}


def needs_approval(state: AccountState, request: dict, policy: GuardPolicy) -> bool:
    return (suspension.important(state) or bool(request.get("important"))
            or request.get("customerTier") in policy.important_tiers) and not request.get("accountManagerApprovalRef")


def decide_request(state: AccountState, request: dict, event, policy: GuardPolicy) -> list[Decision]:
    if not needs_approval(state, request, policy):
        return suspension.decide_request(state, request, event, policy)
    reasons, body = suspension.checks(state, request, event.event_time, policy)
    if reasons:  # denied whatever a manager would say: no one is asked
        return [Decision(suspension.DENIED, suspension.RULES, "denied", body,
                         (*reasons, "ACCOUNT_MANAGER_APPROVAL_MISSING"))]
    due = event.event_time + timedelta(hours=policy.approval_timeout_hours)
    held = {**body, "customerTier": request.get("customerTier"), "accountManagerId": request.get("accountManagerId"),
            "arrearsComputedAt": rfc3339(request["arrearsComputedAt"]), "approvalDueAt": rfc3339(due),
            "approverRoles": sorted(policy.approver_roles)}
    timer = Timer(derived_id(event.event_id, APPROVAL_TIMER), due, APPROVAL_TIMER, body["accountId"],
                  {"accountId": body["accountId"], "requestId": body["requestId"]})
    return [Decision(AWAITING, RULES, "awaitingApproval", held, ("IMPORTANT_CUSTOMER_NEEDS_ACCOUNT_MANAGER",),
                     timer=timer)]


def decide_answer(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    """billing.approval.v1: approve, refuse, or reject the answer itself with its reason."""
    p = event.payload
    answer = {"approvalId": p["approvalId"], "approverId": p["approverId"], "approverRole": p["approverRole"],
              "verdict": p["verdict"], "approvalReason": p["reason"], "decidedAt": rfc3339(p["decidedAt"])}
    held = pending(state).get(p["requestId"])
    problem = None
    if held is None:
        problem = "NO_SUCH_REQUEST_AWAITING_APPROVAL"
    elif p["approverRole"] not in policy.approver_roles:
        problem = "APPROVER_ROLE_NOT_ALLOWED"
    if problem:
        return [Decision(ANSWER_REJECTED, RULES, "rejected",
                         {"requestId": p["requestId"], "accountId": p["accountId"], **answer}, (problem,))]
    body = _request_body(held)
    cancels = (held["timer"]["timerId"],)
    if p["verdict"] == "refuse":
        return [Decision(suspension.DENIED, suspension.RULES, "denied", {**body, **answer},
                         ("ACCOUNT_MANAGER_REFUSED",), cancels_timers=cancels)]
    request = {"arrearsComputedAt": parse_rfc3339(held["arrearsComputedAt"])}
    if suspension.payment_in_flight(state, request):
        return [Decision(suspension.DENIED, suspension.RULES, "denied", {**body, **answer},
                         ("PAYMENT_IN_FLIGHT",), cancels_timers=cancels)]
    return [suspension.approved({**body, **answer}, event.event_time, event.event_id, policy, cancels=cancels)]


def on_timeout(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    """No answer in time: a refusal, and the request goes to the policy's escalation role."""
    held = pending(state).get(event.payload["data"]["requestId"])
    if held is None:
        return []
    body = _request_body(held)
    return [
        Decision(suspension.DENIED, suspension.RULES, "denied", {**body, "approvalDueAt": held["approvalDueAt"]},
                 ("APPROVAL_TIMED_OUT",)),
        Decision(ESCALATED, RULES, "escalated",
                 {"requestId": held["requestId"], "accountId": held["accountId"],
                  "accountManagerId": held.get("accountManagerId"), "escalateTo": policy.approval_escalate_to,
                  "approvalDueAt": held["approvalDueAt"]}, ("APPROVAL_TIMED_OUT",)),
    ]


def evolve_approval(state: AccountState, decision: dict) -> AccountState:
    """Folds the held requests: added when held, removed by any answer to them."""
    kind, body = decision["decisionType"], decision["payload"]
    held = pending(state)
    if kind == AWAITING:
        held = {**held, body["requestId"]: body}
    elif kind in (suspension.APPROVED, suspension.DENIED) and body.get("requestId") in held:
        held = {k: v for k, v in held.items() if k != body["requestId"]}
    else:
        return state
    return replace(state, extra={**state.extra, "approvals": held})


def _request_body(held: dict) -> dict:
    """The CP4 body of a held request, as SuspensionApproved / SuspensionDenied carry it."""
    return {k: held[k] for k in ("requestId", "accountId", "billId", "overdueMinor", "undisputedOverdueMinor",
                                 "overduePeriodDays", "lateFeeMinor")}
