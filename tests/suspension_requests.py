"""Real dunning.SuspensionRequested decisions (DN.ESCALATE), made by running the pure dunning
domain over a bill until it asks the guard to suspend; for guard tests fed on dunning.decisions.v1."""
from __future__ import annotations

from datetime import datetime, timedelta

from harness import dunning as dn


def suspension_request(account: str, due: datetime, fen: int = 5_000, tier: str = "standard",
                       manager: str | None = None) -> dict:
    acc = dn.Account()
    event = dn.bill(account, f"B-{account}", due, fen, tier=tier)
    event.payload["customer"]["accountManagerId"] = manager
    acc.feed(event)
    reminders = dn.of_type(acc.fire_due_timers(due + timedelta(days=29)), "dunning.ReminderDue")
    acc.feed(dn.delivery(account, reminders[0]["decisionId"], "answered", due + timedelta(days=12), reminders[0]["payload"]["channel"]))
    (request,) = dn.of_type(acc.fire_due_timers(due + timedelta(days=31)), "dunning.SuspensionRequested")
    return request
