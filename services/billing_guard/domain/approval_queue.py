"""CP4.IMPORTANT's work queue: suspension requests still waiting for an account manager's
approval, per account manager, folded from the guard's decisions (as stored or published)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from schemas.decision_types.guard import SUSPENSION_APPROVED, SUSPENSION_AWAITING_APPROVAL, SUSPENSION_DENIED

NO_MANAGER = "(no account manager)"


def pending_approvals(decisions: Iterable[dict]) -> dict[str, list[dict]]:
    waiting: dict[str, dict] = {}
    for d in decisions:
        body = d["payload"]
        if d["decisionType"] == SUSPENSION_AWAITING_APPROVAL:
            waiting[body["requestId"]] = {
                "requestId": body["requestId"], "accountId": body["accountId"], "billId": body["billId"],
                "customerTier": body.get("customerTier"), "undisputedOverdueMinor": body["undisputedOverdueMinor"],
                "requestedAt": d["businessTime"], "approvalDueAt": body["approvalDueAt"], "decisionId": d["decisionId"],
                "manager": body.get("accountManagerId") or NO_MANAGER}
        elif d["decisionType"] in (SUSPENSION_APPROVED, SUSPENSION_DENIED):
            waiting.pop(body.get("requestId"), None)
    queue: dict[str, list[dict]] = defaultdict(list)
    for item in sorted(waiting.values(), key=lambda i: (i["approvalDueAt"], i["requestId"])):
        queue[item["manager"]].append(item)
    return dict(queue)
