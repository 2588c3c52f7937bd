"""Who must contact whom today: manual and account-manager reminders due on a local day,
by account manager, not yet reported delivered (DN.FIRST_LETTER, DN.CREDIT_LEVEL)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from schemas.decision_types.dunning import (
    BILL_TRACKED, DELIVERY_RECORDED, OCCURRENCE_OPENED, REMINDER_DUE, REMINDER_SCHEDULED, REMINDER_SKIPPED,
)

PERSON_CHANNELS = ("manual", "accountManager")
NO_MANAGER = "counter-staff"


# The decisions the queue is folded from (the CLI reads only these).
QUEUE_INPUTS = (REMINDER_SCHEDULED, REMINDER_DUE, REMINDER_SKIPPED,
                DELIVERY_RECORDED, BILL_TRACKED, OCCURRENCE_OPENED)


def _row(reminder_id: str, due: datetime, body: dict, overdue_minor: int | None, state: str) -> dict:
    return {"reminderId": reminder_id, "dueAt": due.isoformat(), "accountId": body["accountId"],
            "billId": body["billId"], "overdueMinor": overdue_minor, "offenceCount": body["offenceCount"],
            "channel": body["channel"], "state": state}


def _pending_scheduled(decisions: list[dict], day: date, zone: ZoneInfo) -> list[tuple[str, dict]]:
    """Person reminders scheduled for `day` whose timer has not fired or been cancelled yet:
    they are today's work even before their ReminderDue is decided (issue 16: the queue showed
    0 while 33 were scheduled that day)."""
    handled = {d["payload"].get("firedTimerId") for d in decisions}
    for d in decisions:
        handled.update(d["payload"].get("cancelsTimers", ()))
    managers = {d["payload"]["billId"]: d["payload"].get("accountManagerId")
                for d in decisions if d["decisionType"] == BILL_TRACKED}
    overdue = {d["payload"]["occurrenceId"]: d["payload"].get("overdueMinor")
               for d in decisions if d["decisionType"] == OCCURRENCE_OPENED}
    out = []
    for d in decisions:
        body = d["payload"]
        if d["decisionType"] != REMINDER_SCHEDULED or body["channel"] not in PERSON_CHANNELS:
            continue
        due = datetime.fromisoformat(body["scheduledFor"]).astimezone(zone)
        if due.date() == day and body["timer"]["timerId"] not in handled:
            out.append((managers.get(body["billId"]) or NO_MANAGER,
                        _row(d["decisionId"], due, body, overdue.get(body["occurrenceId"]), "scheduled")))
    return out


def work_queue(decisions: Iterable[dict], day: date, zone: ZoneInfo) -> dict[str, list[dict]]:
    decisions = list(decisions)
    delivered = {
        d["payload"]["reminderId"]
        for d in decisions
        if d["decisionType"] == DELIVERY_RECORDED and d["payload"]["delivered"]
    }
    queue: dict[str, list[dict]] = defaultdict(list)
    for d in decisions:
        body = d["payload"]
        if d["decisionType"] != REMINDER_DUE or body["channel"] not in PERSON_CHANNELS:
            continue
        due = datetime.fromisoformat(d["businessTime"]).astimezone(zone)
        if due.date() != day or d["decisionId"] in delivered:
            continue
        queue[body.get("accountManagerId") or NO_MANAGER].append(_row(d["decisionId"], due, body, body["overdueMinor"], "due"))
    for manager, row in _pending_scheduled(decisions, day, zone):
        queue[manager].append(row)
    return {manager: sorted(items, key=lambda i: (i["dueAt"], i["accountId"])) for manager, items in sorted(queue.items())}
