"""Reminders: DN.FIRST_LETTER, DN.REPEAT_VOICE, DN.CREDIT_LEVEL, DN.QUIET_HOURS.

A reminder is scheduled as a decision with a timer; when the timer fires a ReminderDue
decision tells the channel to deliver it. Voice is only ever chosen for a repeat offence,
so no sequence of events can put an automated call on a first offence.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from schemas.decision_types import dunning as types
from services.common.decider import Decision, Timer
from services.common.ids import derived_id
from services.common.timefmt import rfc3339

from .account import Bill
from .policy import FIRST_OFFENCE_CHANNELS, DunningPolicy

REMINDER_DUE = "reminderDue"  # the timer kind; the decision is types.REMINDER_DUE


def outside_quiet_hours(moment: datetime, policy: DunningPolicy) -> datetime:
    """DN.QUIET_HOURS: a reminder falling between quiet start and end moves to quiet end."""
    local = moment.astimezone(policy.timezone)
    start, end = policy.quiet_start, policy.quiet_end
    clock = local.timetz().replace(tzinfo=None)
    if clock >= start:
        local = (local + timedelta(days=1)).replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    elif clock < end:
        local = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return local


def channel_for(bill: Bill, offence_count: int, sequence: int, policy: DunningPolicy) -> tuple[str, tuple[str, ...]]:
    treatment = policy.treatment_for(bill.credit_level, bill.tier)
    if offence_count == 1:
        channel = treatment.first_offence_channel
        assert channel in FIRST_OFFENCE_CHANNELS  # the policy loader guarantees it (DN.FIRST_LETTER)
        return channel, ("DN.FIRST_LETTER", "DN.CREDIT_LEVEL")
    channels = treatment.repeat_channels
    return channels[(sequence - 1) % len(channels)], ("DN.REPEAT_VOICE", "DN.CREDIT_LEVEL")


def schedule_reminder(account_id: str, occurrence_id: str, bill: Bill, offence_count: int, wanted_at: datetime,
                      *, sequence: int, policy: DunningPolicy, business_time: datetime) -> Decision:
    channel, rules = channel_for(bill, offence_count, sequence, policy)
    at = outside_quiet_hours(wanted_at, policy)
    treatment = policy.treatment_for(bill.credit_level, bill.tier)
    return Decision(
        decision_type=types.REMINDER_SCHEDULED,
        rule_ids=rules + (("DN.QUIET_HOURS",) if at != wanted_at else ()),
        outcome="scheduled",
        reason_codes=("FIRST_OFFENCE",) if offence_count == 1 else ("REPEAT_OFFENCE",),
        business_time=business_time,
        payload={
            "accountId": account_id,
            "occurrenceId": occurrence_id,
            "billId": bill.bill_id,
            "offenceCount": offence_count,
            "sequence": sequence,
            "channel": channel,
            "voiceAllowed": offence_count >= 2,
            "treatment": treatment.name,
            "scheduledFor": rfc3339(at),
        },
        timer=Timer(
            timer_id=derived_id("dunning", occurrence_id, REMINDER_DUE, sequence, rfc3339(business_time)),
            due_at=at,
            kind=REMINDER_DUE,
            key=account_id,
            data={"accountId": account_id, "occurrenceId": occurrence_id, "sequence": sequence, "channel": channel},
        ),
    )


def on_reminder_due(state, event, policy: DunningPolicy) -> list[Decision]:
    data = event.payload["data"]
    fired = event.payload["timerId"]
    occurrence = state.occurrence(data["occurrenceId"])
    if occurrence is None or fired not in occurrence.pending_timers:
        return []  # withdrawn, or a stale timer: nothing to deliver
    bill = state.bills[occurrence.bill_id]
    base = {"accountId": data["accountId"], "occurrenceId": occurrence.occurrence_id, "billId": bill.bill_id,
            "sequence": data["sequence"], "firedTimerId": fired}
    skip_reason = None
    if occurrence.closed:
        skip_reason = "PAID"
    elif bill.undisputed == 0:
        skip_reason = "DISPUTED"  # D.HOLD: no dunning for an amount on hold
    elif state.suspension == "suspended":
        skip_reason = "SUSPENDED"
    if skip_reason:
        return [Decision(decision_type=types.REMINDER_SKIPPED, rule_ids=("DN.PAYMENT_STOPS", "D.HOLD") if skip_reason == "DISPUTED" else ("DN.PAYMENT_STOPS",),
                         outcome="skipped", reason_codes=(skip_reason,), payload=base)]
    channel = data["channel"]
    offence = occurrence.offence_count
    if channel == "voice" and offence < 2:  # defence in depth for DN.FIRST_LETTER
        channel = policy.treatment_for(bill.credit_level, bill.tier).first_offence_channel
    rules = ("DN.FIRST_LETTER",) if offence == 1 else ("DN.REPEAT_VOICE",)
    decisions = [
        Decision(
            decision_type=types.REMINDER_DUE,
            rule_ids=rules + ("DN.QUIET_HOURS",),
            outcome="deliver",
            payload={
                **base,
                "channel": channel,
                "offenceCount": offence,
                "overdueMinor": bill.undisputed,
                "accountManagerId": bill.account_manager_id if channel in ("manual", "accountManager") else None,
            },
        )
    ]
    if offence >= 2:
        # DN.REPEAT_VOICE: repeated on the policy cadence until paid, disputed or suspended.
        treatment = policy.treatment_for(bill.credit_level, bill.tier)
        decisions.append(
            schedule_reminder(
                data["accountId"], occurrence.occurrence_id, bill, offence,
                event.event_time + timedelta(days=treatment.voice_cadence_days),
                sequence=data["sequence"] + 1, policy=policy, business_time=event.event_time,
            )
        )
    return decisions


def on_delivery(state, event, policy: DunningPolicy) -> list[Decision]:
    """Delivery outcomes from the channel providers; CP4.REMINDED counts delivered ones."""
    report = event.payload
    delivered = report["outcome"] in ("posted", "answered")
    known = report["reminderId"] in state.reminders
    return [
        Decision(
            decision_type=types.DELIVERY_RECORDED,
            rule_ids=("CP4.REMINDED",),
            outcome="delivered" if delivered else "notDelivered",
            reason_codes=() if known else ("UNKNOWN_REMINDER",),
            payload={
                "accountId": report["accountId"],
                "reminderId": report["reminderId"],
                "occurrenceId": state.reminders.get(report["reminderId"]),
                "channel": report["channel"],
                "deliveryOutcome": report["outcome"],
                "delivered": delivered and known,
            },
        )
    ]
