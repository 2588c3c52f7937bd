"""Arrears-suspension checkpoint (CP4): approve or deny with every reason that applied, order
restoration on payment with the 48 h SLA, flag termination eligibility after 60 days.

The request (normally from dunning, DN.ESCALATE) is a dict:
  {requestId, accountId, billId, overdueMinor, paymentDueDate (datetime), arrearsComputedAt
   (datetime), remindersDelivered (int), agreedOverdueDays (int|None),
   important (bool), customerTier, accountManagerId}
An important customer's request never reaches decide_request: vip_approval.py holds it for an
answer on billing.approval.v1 (CP4.IMPORTANT); a free-text approval reference approves nothing.
Payments (billing.payment.v1) are recorded on the account so CP4.NO_PAYMENT_IN_FLIGHT and
restoration can be decided from the account's own stream.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from schemas.decision_types.guard import (
    PAYMENT_RECORDED, RESTORATION_COMPLETED, RESTORATION_ORDERED, RESTORATION_SLA_MISSED, SUSPENSION_APPROVED,
    SUSPENSION_DENIED, TERMINATION_ELIGIBLE,
)
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339, rfc3339

from .account import AccountState
from .disputes import held_amount
from .policy import GuardPolicy

TERMINATION_TIMER = "terminationCheck"
RESTORE_TIMER = "restoreDeadline"
TYPES = frozenset({PAYMENT_RECORDED, SUSPENSION_APPROVED, SUSPENSION_DENIED, RESTORATION_ORDERED, RESTORATION_SLA_MISSED,
                   RESTORATION_COMPLETED, TERMINATION_ELIGIBLE})


def _susp(state: AccountState) -> dict:
    return state.extra.get("suspension") or {}


def important(state: AccountState) -> bool:
    return (state.fields.get("importantFlag") or "").lower() in ("true", "yes", "1", "vip")


RULES = ("CP4.OVERDUE_30", "CP4.NET_OF_DISPUTES", "CP4.NO_PAYMENT_IN_FLIGHT", "CP4.REMINDED", "CP4.IMPORTANT")


def payment_in_flight(state: AccountState, request: dict) -> bool:
    payments = state.extra.get("payments", ())
    return any(p["at"] > request["arrearsComputedAt"] and p["status"] in ("received", "pending") for p in payments)


def checks(state: AccountState, request: dict, at, policy: GuardPolicy) -> tuple[list[str], dict]:
    """Every CP4 condition but the approval: the reasons that fail, and the decision body."""
    reasons = []
    period = request.get("agreedOverdueDays") or policy.suspension_overdue_days
    if at - request["paymentDueDate"] <= timedelta(days=period):
        reasons.append("NOT_OVERDUE_LONG_ENOUGH")
    undisputed = request["overdueMinor"] - held_amount(state, request["billId"])
    if undisputed <= 0:
        reasons.append("NOTHING_UNDISPUTED_OVERDUE")
    if payment_in_flight(state, request):
        reasons.append("PAYMENT_IN_FLIGHT")
    if request["remindersDelivered"] < 1:
        reasons.append("NO_REMINDER_DELIVERED")
    body = {"requestId": request["requestId"], "accountId": request["accountId"], "billId": request["billId"],
            "overdueMinor": request["overdueMinor"], "undisputedOverdueMinor": max(0, undisputed),
            "overduePeriodDays": period, "lateFeeMinor": request.get("lateFeeMinor", 0)}
    return reasons, body


def approved(body: dict, at, timer_seed: str, policy: GuardPolicy, cancels: tuple = ()) -> Decision:
    """The suspension passes CP4; the termination check (CP4.TERMINATION) is set."""
    timer_id = derived_id(timer_seed, TERMINATION_TIMER)
    due = at + timedelta(days=policy.termination_days)
    return Decision(SUSPENSION_APPROVED, RULES, "approved", {**body, "terminationCheckAt": rfc3339(due)},
                    timer=Timer(timer_id, due, TERMINATION_TIMER, body["accountId"], {"accountId": body["accountId"]}),
                    cancels_timers=cancels)


def decide_request(state: AccountState, request: dict, event, policy: GuardPolicy) -> list[Decision]:
    reasons, body = checks(state, request, event.event_time, policy)
    if important(state) or request.get("important"):
        reasons.append("ACCOUNT_MANAGER_APPROVAL_MISSING")
    if reasons:
        return [Decision(SUSPENSION_DENIED, RULES, "denied", body, tuple(reasons))]
    return [approved(body, event.event_time, event.event_id, policy)]


def decide_payment(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    p = event.payload
    out = [Decision(PAYMENT_RECORDED, ("CP4.NO_PAYMENT_IN_FLIGHT",), p["status"],
                    {"paymentId": p["paymentId"], "accountId": p["accountId"], "billId": p.get("billId"),
                     "amountMinor": p["amount"]["amountMinor"], "status": p["status"],
                     "paymentDate": rfc3339(p["paymentDate"])})]
    s = _susp(state)
    if s.get("active") and p["status"] == "received":
        paid = s.get("paid", 0) + p["amount"]["amountMinor"]
        # Late fee is owed too (regulation art. 34); dunning states it in the request's amount.
        if paid >= s["owedMinor"]:
            deadline = event.event_time + timedelta(hours=policy.restore_hours)
            out.append(Decision(RESTORATION_ORDERED, ("CP4.RESTORE_48H",), "ordered",
                                {"accountId": p["accountId"], "paymentId": p["paymentId"],
                                 "restoreBy": rfc3339(deadline)},
                                timer=Timer(derived_id(event.event_id, RESTORE_TIMER), deadline, RESTORE_TIMER,
                                            p["accountId"], {"accountId": p["accountId"]}),
                                cancels_timers=(s["terminationTimerId"],)))
    return out


def on_timer(state: AccountState, event) -> list[Decision]:
    s = _susp(state)
    kind = event.payload["kind"]
    if kind == TERMINATION_TIMER and s.get("active"):
        return [Decision(TERMINATION_ELIGIBLE, ("CP4.TERMINATION",), "eligible",
                         {"accountId": event.payload["data"]["accountId"], "suspendedSince": s["since"],
                          "automatic": False}, ("SUSPENDED_60_DAYS_UNPAID",))]
    if kind == RESTORE_TIMER and s.get("restoreOrdered") and not s.get("restoreConfirmed"):
        # billing.restoration.v1 has not reported the line back within 48 h: an SLA miss.
        return [Decision(RESTORATION_SLA_MISSED, ("CP4.RESTORE_48H",), "alert",
                         {"accountId": event.payload["data"]["accountId"], "restoreBy": s["restoreBy"]},
                         ("RESTORATION_NOT_CONFIRMED_IN_48H",))]
    return []


def decide_restoration(state: AccountState, event) -> list[Decision]:
    """CP4.RESTORE_48H: the network reports the line restored; met or missed, it is recorded,
    and the pending deadline stops."""
    p = event.payload
    s = _susp(state)
    if not s.get("restoreOrdered") or s.get("restoreConfirmed"):
        return [Decision(RESTORATION_COMPLETED, ("CP4.RESTORE_48H",), "unmatched",
                         {"accountId": p["accountId"], "completedAt": rfc3339(p["completedAt"])},
                         ("NO_RESTORATION_PENDING",))]
    on_time = p["completedAt"] <= parse_rfc3339(s["restoreBy"])
    return [Decision(RESTORATION_COMPLETED, ("CP4.RESTORE_48H",), "withinSla" if on_time else "late",
                     {"accountId": p["accountId"], "completedAt": rfc3339(p["completedAt"]),
                      "restoreBy": s["restoreBy"], "restorationOrderId": s.get("restoreOrderId"),
                      "networkSystem": p["networkSystem"]},
                     () if on_time else ("RESTORED_AFTER_48H",),
                     cancels_timers=(s["restoreTimerId"],) if on_time else ())]


def evolve_suspension(state: AccountState, decision: dict) -> AccountState:
    kind, body = decision["decisionType"], decision["payload"]
    s = dict(_susp(state))
    if kind == PAYMENT_RECORDED:
        payments = state.extra.get("payments", ()) + ({"at": parse_rfc3339(body["paymentDate"]), "status": body["status"]},)
        if s.get("active") and body["status"] == "received":
            s["paid"] = s.get("paid", 0) + body["amountMinor"]
        return replace(state, extra={**state.extra, "payments": payments, "suspension": s})
    if kind == SUSPENSION_APPROVED:
        s = {"active": True, "since": decision["businessTime"],
             "owedMinor": body["undisputedOverdueMinor"] + body.get("lateFeeMinor", 0), "paid": 0,
             "terminationTimerId": body["timer"]["timerId"]}
    elif kind == RESTORATION_ORDERED:
        s = {**s, "active": False, "restoreOrdered": True, "restoreConfirmed": False, "restoreBy": body["restoreBy"],
             "restoreTimerId": body["timer"]["timerId"], "restoreOrderId": decision["decisionId"]}
    elif kind == RESTORATION_COMPLETED and decision["outcome"] != "unmatched":
        s = {**s, "restoreConfirmed": True}
    return replace(state, extra={**state.extra, "suspension": s})


def parse_request(body: dict) -> dict:
    return {**body, "paymentDueDate": parse_rfc3339(body["paymentDueDate"]) if isinstance(body["paymentDueDate"], str) else body["paymentDueDate"],
            "arrearsComputedAt": parse_rfc3339(body["arrearsComputedAt"]) if isinstance(body["arrearsComputedAt"], str) else body["arrearsComputedAt"]}




def from_dunning(decision: dict) -> dict:
    """dunning.SuspensionRequested (DN.ESCALATE) as a CP4 request; owed = undisputed overdue + late fee."""
    body = decision["payload"]
    return {"requestId": decision["decisionId"], "accountId": body["accountId"], "billId": body["billId"],
            "overdueMinor": body["overdueMinor"] + body.get("heldMinor", 0),
            "lateFeeMinor": body.get("lateFeeToDateMinor", 0),
            "paymentDueDate": parse_rfc3339(body["anchorDate"]),
            "arrearsComputedAt": parse_rfc3339(decision["businessTime"]),
            "remindersDelivered": body.get("remindersDelivered", 0), "agreedOverdueDays": None,
            "important": bool(body.get("important")),
            "customerTier": body.get("customerTier"), "accountManagerId": body.get("accountManagerId")}
