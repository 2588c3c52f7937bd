"""Engineering cutover / software upgrade checkpoint (CP5), and the windows CDRs are checked against.

All planned works share one stream: they are rare, and every CDR needs to know the cleared
windows of its switch (CP5.WINDOW_CDRS) without a second lookup.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.decider import Decision
from services.common.timefmt import parse_rfc3339, rfc3339

from schemas.decision_types.guard import OUTAGE_CREDIT_ISSUED, OUTAGE_CREDIT_REFUSED, PLANNED_WORK_BLOCKED, PLANNED_WORK_CLEARED
from .policy import GuardPolicy



@dataclass(frozen=True)
class WorksState:
    works: dict = field(default_factory=dict)  # work id -> {"status", "switchIds", "areas", "start", "end", "credited"}

    def windows_covering(self, switch_id: str, area: str | None, at: datetime) -> list[str]:
        found = []
        for work_id, w in self.works.items():
            if w["status"] != "cleared" or not (w["start"] <= at < w["end"]):
                continue
            if switch_id in w["switchIds"] or (area is not None and area in w["areas"]):
                found.append(work_id)
        return sorted(found)


def missing_clearances(p: dict, decided_at: datetime, policy: GuardPolicy) -> tuple[list[str], list[str]]:
    """Every approval or notice still missing, and the rules that asked for them."""
    have = {a["authority"] for a in p["approvals"]}
    missing, rules = [], []

    def need(authority: str, rule: str) -> None:
        rules.append(rule)
        code = {"provincial": "MISSING_PROVINCIAL_APPROVAL", "groupHq": "MISSING_GROUP_HQ_APPROVAL",
                "regulator": "MISSING_REGULATOR_APPROVAL"}[authority]
        if authority not in have and code not in missing:
            missing.append(code)

    if p["plannedEnd"] <= p["plannedStart"]:
        missing.append("WINDOW_END_NOT_AFTER_START")
    if len(set(p["provinces"])) > 1:
        need("groupHq", "CP5.CROSS_PROVINCE")
    else:
        need("provincial", "CP5.PROVINCIAL")
    # "Over 24 h" is strict: exactly the threshold counts as a short work that needs the notice.
    long_work = p["expectedImpactHours"] > policy.long_impact_hours
    if long_work or p["affectsImportantCustomers"]:
        need("groupHq", "CP5.LONG_OR_VIP")
        need("regulator", "CP5.LONG_OR_VIP")
    if not long_work:
        rules.append("CP5.NOTICE_72H")
        latest_notice = p["plannedStart"] - timedelta(hours=policy.notice_hours)
        if not any(n["sentAt"] <= latest_notice and n["sentAt"] <= decided_at for n in p["notices"]):
            missing.append("MISSING_72H_NOTICE")
    return missing, list(dict.fromkeys(rules))


def notice_lead_hours(p: dict, decided_at: datetime) -> int | None:
    """Whole hours, rounded down: a lead is short of an integer limit exactly when this is."""
    sent = [n["sentAt"] for n in p["notices"] if n["sentAt"] <= decided_at]
    return int((p["plannedStart"] - min(sent)).total_seconds() // 3600) if sent else None


def decide_work(state: WorksState, event, policy: GuardPolicy) -> list[Decision]:
    p = event.payload
    if p["action"] == "planned":
        missing, rules = missing_clearances(p, event.event_time, policy)
        body = {"workId": p["workId"], "workKind": p["workKind"], "provinces": p["provinces"], "areas": p["areas"],
                "switchIds": p["switchIds"], "plannedStart": rfc3339(p["plannedStart"]),
                "plannedEnd": rfc3339(p["plannedEnd"]), "expectedImpactHours": p["expectedImpactHours"],
                "affectsImportantCustomers": p["affectsImportantCustomers"], "missing": missing,
                "affectedAccountCount": len(p["affectedAccountIds"]),
                # The longest lead of a notice sent by the decision (CP5.NOTICE_72H), for the self-check.
                "noticeLeadHours": notice_lead_hours(p, event.event_time)}
        if missing:
            return [Decision(PLANNED_WORK_BLOCKED, tuple(rules), "blocked", body, tuple(missing))]
        return [Decision(PLANNED_WORK_CLEARED, tuple(rules), "cleared", body)]
    work = state.works.get(p["workId"])
    start, end = p["actualOutageStart"], p["actualOutageEnd"]
    base = {"workId": p["workId"], "actualOutageStart": rfc3339(start), "actualOutageEnd": rfc3339(end)}
    if work is None or work["status"] != "cleared":
        reason = "WORK_UNKNOWN" if work is None else "WORK_NOT_CLEARED"
        return [Decision(OUTAGE_CREDIT_REFUSED, ("CP5.OUTAGE_CREDIT",), "refused", base, (reason,))]
    seconds = max(0, int((end - start).total_seconds()))
    hours = -(-seconds // 3600)  # every started hour of outage is credited
    credit = hours * policy.outage_credit_per_hour
    return [
        Decision(OUTAGE_CREDIT_ISSUED, ("CP5.OUTAGE_CREDIT",), "credited",
                 {**base, "accountId": account, "outageSeconds": seconds, "creditedHours": hours,
                  "creditMinor": credit, "rounding": "per started hour x policy outageCreditPerHourMinor"})
        for account in sorted(set(p["affectedAccountIds"]))
    ]


def evolve_works(state: WorksState, decision: dict) -> WorksState:
    kind, body = decision["decisionType"], decision["payload"]
    if kind in (PLANNED_WORK_CLEARED, PLANNED_WORK_BLOCKED):
        work = {"status": "cleared" if kind == PLANNED_WORK_CLEARED else "blocked",
                "switchIds": frozenset(body["switchIds"]),
                "areas": frozenset(body["areas"]), "start": parse_rfc3339(body["plannedStart"]),
                "end": parse_rfc3339(body["plannedEnd"])}
        return WorksState({**state.works, body["workId"]: work})
    return state
