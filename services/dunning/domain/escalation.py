"""DN.ESCALATE: more than the policy's days overdue -> a suspension request to the guard
(CP4); dunning never suspends by itself. A clearing payment -> a restoration request."""
from __future__ import annotations

from datetime import datetime

from schemas.decision_types.dunning import ESCALATION_SKIPPED, RESTORATION_REQUESTED, SUSPENSION_REQUESTED
from services.common.decider import Decision
from services.common.timefmt import rfc3339

from .account import AccountState
from .late_fees import late_fee
from .policy import DunningPolicy


def on_escalate(state: AccountState, event, policy: DunningPolicy) -> list[Decision]:
    data = event.payload["data"]
    fired = event.payload["timerId"]
    occurrence = state.occurrence(data["occurrenceId"])
    if occurrence is None or occurrence.closed or fired not in occurrence.pending_timers:
        return []
    bill = state.bills[occurrence.bill_id]
    base = {"accountId": data["accountId"], "occurrenceId": occurrence.occurrence_id, "billId": bill.bill_id,
            "firedTimerId": fired}
    if bill.undisputed == 0:
        return [Decision(decision_type=ESCALATION_SKIPPED, rule_ids=("DN.ESCALATE", "D.HOLD"),
                         outcome="skipped", reason_codes=("ALL_DISPUTED",), payload=base)]
    if state.suspension in ("requested", "suspended"):
        return [Decision(decision_type=ESCALATION_SKIPPED, rule_ids=("DN.ESCALATE",),
                         outcome="skipped", reason_codes=("ALREADY_" + state.suspension.upper(),), payload=base)]
    fee, days, _ = late_fee(occurrence.anchor, bill, event.event_time, policy.late_fee_per_mille)
    return [
        Decision(
            decision_type=SUSPENSION_REQUESTED,
            rule_ids=("DN.ESCALATE", "CP4.OVERDUE_30"),
            outcome="requested",
            payload={
                **base,
                "anchorDate": rfc3339(occurrence.anchor),
                "daysOverdue": days,
                "overdueMinor": bill.undisputed,
                "heldMinor": bill.held,
                "lateFeeToDateMinor": fee,
                "remindersDelivered": state.delivered_reminders(occurrence.occurrence_id),
                "remindersSent": occurrence.reminders_sent,
                "important": bill.important,
                # CP4.IMPORTANT: the guard holds a diamond/gold suspension for this manager's approval.
                "customerTier": bill.tier,
                "accountManagerId": bill.account_manager_id,
                "offenceCount": occurrence.offence_count,
            },
        )
    ]


def restoration_if_cleared(state: AccountState, account_id: str, still_open: set, at: datetime) -> list[Decision]:
    """CP4.RESTORE_48H starts here: once nothing is overdue, ask the guard to restore."""
    if state.suspension not in ("suspended", "requested") or still_open:
        return []
    return [
        Decision(
            decision_type=RESTORATION_REQUESTED,
            rule_ids=("DN.ESCALATE", "CP4.RESTORE_48H"),
            outcome="requested",
            reason_codes=("ARREARS_CLEARED",),
            business_time=at,
            payload={"accountId": account_id, "clearedAt": rfc3339(at)},
        )
    ]
