"""Customer-data modification checkpoint (CP1): who may change which billing field, with
whose second approval, from which old value, effective when."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from schemas.decision_types.guard import CUSTOMER_DATA_CHANGED, CUSTOMER_DATA_CHANGE_REJECTED
from services.common.decider import Decision
from services.common.timefmt import parse_rfc3339, rfc3339

from .account import AccountState
from .cycles import cycle_of, next_cycle
from .policy import GuardPolicy



def current_value(state: AccountState, name: str, policy: GuardPolicy) -> str | None:
    if name == "tariffPlan":
        return state.fields.get(name, policy.default_tariff_id)
    return state.fields.get(name)


def cycle_start(cycle: str, zone) -> datetime:
    return datetime(int(cycle[:4]), int(cycle[5:7]), 1, tzinfo=zone)


def decide_change(state: AccountState, event, policy: GuardPolicy) -> list[Decision]:
    p = event.payload
    name, now = p["field"], event.event_time
    reasons, rules = [], ["CP1.BILLING_FIELDS", "CP1.AUTHORIZED", "CP1.STALE_WRITE", "CP1.NO_RETROACTIVE", "CP1.AUDIT"]
    if p["operatorRole"] not in policy.field_roles[name]:
        reasons.append("ROLE_NOT_ALLOWED_FOR_FIELD")
    before = current_value(state, name, policy)
    if p["oldValue"] != before:
        reasons.append("STALE_OLD_VALUE")
    if name in policy.four_eyes_fields:
        rules.append("CP1.FOUR_EYES")
        if not p.get("approverId"):
            reasons.append("SECOND_APPROVER_MISSING")
        elif p["approverId"] == p["operatorId"]:
            reasons.append("APPROVER_IS_OPERATOR")
    requested = p.get("requestedEffectiveFrom")
    if requested is not None and requested < now:
        reasons.append("RETROACTIVE_EFFECTIVE_TIME")
    if name == "tariffPlan":
        # A plan change applies from the next bill cycle, so one cycle is never rated at two plans.
        effective = cycle_start(next_cycle(cycle_of(now, policy.timezone)), policy.timezone)
        if requested is not None and requested > effective:
            effective = requested
    else:
        effective = max(requested, now) if requested is not None else now
    body = {"requestId": p["requestId"], "accountId": p["accountId"], "field": name,
            "before": before, "after": p["newValue"], "statedOldValue": p["oldValue"],
            "operatorId": p["operatorId"], "operatorRole": p["operatorRole"], "approverId": p.get("approverId"),
            "channel": p["channel"], "reason": p["reason"], "effectiveFrom": rfc3339(effective)}
    if reasons:
        return [Decision(CUSTOMER_DATA_CHANGE_REJECTED, tuple(rules), "rejected", body, tuple(reasons))]
    return [Decision(CUSTOMER_DATA_CHANGED, tuple(rules), "accepted", body)]


def evolve_customer(state: AccountState, decision: dict) -> AccountState:
    """CP1.AUDIT: an accepted change (guard.CustomerDataChanged) sets the field and is audited; a
    rejected one changes nothing."""
    body = decision["payload"]
    effective = parse_rfc3339(body["effectiveFrom"])
    state = replace(state, fields={**state.fields, body["field"]: body["after"]},
                    audit=state.audit + ((None, decision["decisionId"], decision["decisionType"], tuple(decision["ruleIds"])),))
    if body["field"] == "tariffPlan":
        state = replace(state, tariff_plans=state.tariff_plans + ((effective, body["after"]),))
    return state
