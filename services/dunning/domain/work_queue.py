"""Who must contact whom today: manual and account-manager reminders due on a local day,
by account manager, not yet reported delivered (DN.FIRST_LETTER, DN.CREDIT_LEVEL)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

PERSON_CHANNELS = ("manual", "accountManager")
NO_MANAGER = "counter-staff"


def work_queue(decisions: Iterable[dict], day: date, zone: ZoneInfo) -> dict[str, list[dict]]:
    decisions = list(decisions)
    delivered = {
        d["payload"]["reminderId"]
        for d in decisions
        if d["decisionType"] == "dunning.DeliveryRecorded" and d["payload"]["delivered"]
    }
    queue: dict[str, list[dict]] = defaultdict(list)
    for d in decisions:
        body = d["payload"]
        if d["decisionType"] != "dunning.ReminderDue" or body["channel"] not in PERSON_CHANNELS:
            continue
        due = datetime.fromisoformat(d["businessTime"]).astimezone(zone)
        if due.date() != day or d["decisionId"] in delivered:
            continue
        queue[body.get("accountManagerId") or NO_MANAGER].append(
            {
                "reminderId": d["decisionId"],
                "dueAt": due.isoformat(),
                "accountId": body["accountId"],
                "billId": body["billId"],
                "overdueMinor": body["overdueMinor"],
                "offenceCount": body["offenceCount"],
                "channel": body["channel"],
            }
        )
    return {manager: sorted(items, key=lambda i: (i["dueAt"], i["accountId"])) for manager, items in sorted(queue.items())}
