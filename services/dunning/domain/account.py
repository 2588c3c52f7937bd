"""An account's arrears as dunning sees it, folded from its own decisions (evolve)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common.timefmt import parse_rfc3339


@dataclass(frozen=True)
class Bill:
    bill_id: str
    amount_due: int
    paid: int
    due_at: datetime
    credit_level: str
    tier: str
    important: bool = False
    account_manager_id: str | None = None
    credited: int = 0  # credit notes from resolved disputes
    held: int = 0  # amount under an open dispute (D.HOLD)
    # (business time, paid, credited, held) deltas: the amounts as they stood at any moment,
    # whatever order the inputs were processed in (the late-fee basis, DN.LATE_FEE)
    changes: tuple = ()

    @property
    def outstanding(self) -> int:
        return max(0, self.amount_due - self.paid - self.credited)

    @property
    def undisputed(self) -> int:
        """What dunning may act on: outstanding net of amounts on hold (D.HOLD, CP4.NET_OF_DISPUTES)."""
        return max(0, self.outstanding - self.held)

    def undisputed_at(self, moment: datetime) -> int:
        paid = credited = held = 0
        for at, d_paid, d_credited, d_held in self.changes:
            if at <= moment:
                paid, credited, held = paid + d_paid, credited + d_credited, held + d_held
        return max(0, max(0, self.amount_due - paid - credited) - held)


@dataclass(frozen=True)
class Occurrence:
    occurrence_id: str
    bill_id: str
    anchor: datetime  # the due date it started from; a partial payment never moves it
    offence_count: int
    closed: bool = False
    pending_timers: frozenset = frozenset()
    reminders_sent: int = 0
    fee_charged: int = 0


@dataclass(frozen=True)
class AccountState:
    bills: dict = field(default_factory=dict)  # bill id -> Bill
    occurrences: tuple = ()  # Occurrence, oldest first
    payments: dict = field(default_factory=dict)  # payment id -> ((bill id, amount), ...)
    credit: int = 0  # overpayment carried to later bills
    reminders: dict = field(default_factory=dict)  # reminder id -> occurrence id
    deliveries: dict = field(default_factory=dict)  # reminder id -> delivered? (CP4.REMINDED)
    suspension: str = "none"  # none | requested | suspended | restorationRequested
    holds: dict = field(default_factory=dict)  # dispute ticket id -> (bill id, amount held)

    def open_occurrence_for(self, bill_id: str) -> Occurrence | None:
        for occurrence in self.occurrences:
            if occurrence.bill_id == bill_id and not occurrence.closed:
                return occurrence
        return None

    def occurrence_for(self, bill_id: str) -> Occurrence | None:
        for occurrence in reversed(self.occurrences):
            if occurrence.bill_id == bill_id:
                return occurrence
        return None

    def occurrence(self, occurrence_id: str) -> Occurrence | None:
        for occurrence in self.occurrences:
            if occurrence.occurrence_id == occurrence_id:
                return occurrence
        return None

    def open_occurrences(self) -> list[Occurrence]:
        return [o for o in self.occurrences if not o.closed]

    def delivered_reminders(self, occurrence_id: str) -> int:
        return sum(
            1 for rid, ok in self.deliveries.items() if ok and self.reminders.get(rid) == occurrence_id
        )


def _replace_occurrence(state: AccountState, occurrence_id: str, **changes) -> tuple:
    return tuple(replace(o, **changes) if o.occurrence_id == occurrence_id else o for o in state.occurrences)


def _with_amounts(state: AccountState, changes: dict, at: datetime, **more) -> AccountState:
    """Apply paid/credited/held deltas per bill, remembering when (business time) they applied."""
    bills = dict(state.bills)
    for bill_id, delta in changes.items():
        bill = bills[bill_id]
        paid, credited, held = delta.get("paid", 0), delta.get("credited", 0), delta.get("held", 0)
        bills[bill_id] = replace(
            bill, paid=bill.paid + paid, credited=bill.credited + credited, held=bill.held + held,
            changes=bill.changes + ((at, paid, credited, held),),
        )
    return replace(state, bills=bills, **more)


def evolve(state: AccountState, decision: dict) -> AccountState:
    kind = decision["decisionType"]
    body = decision["payload"]
    at = parse_rfc3339(decision["businessTime"])
    timer = body.get("timer")
    cancelled = set(body.get("cancelsTimers", ()))
    if cancelled:
        state = replace(
            state,
            occurrences=tuple(replace(o, pending_timers=o.pending_timers - cancelled) for o in state.occurrences),
        )
    if kind == "dunning.BillTracked":
        bill = Bill(
            bill_id=body["billId"],
            amount_due=body["amountDueMinor"],
            paid=body["creditAppliedMinor"],
            due_at=parse_rfc3339(body["paymentDueDate"]),
            credit_level=body["creditLevel"],
            tier=body["customerTier"],
            important=body["important"],
            account_manager_id=body.get("accountManagerId"),
            changes=((at, body["creditAppliedMinor"], 0, 0),),
        )
        return replace(state, bills={**state.bills, bill.bill_id: bill}, credit=state.credit - body["creditAppliedMinor"])
    if kind == "dunning.PaymentApplied":
        allocations = tuple((a["billId"], a["amountMinor"]) for a in body["allocations"])
        return _with_amounts(
            state, {b: {"paid": amount} for b, amount in allocations}, at,
            payments={**state.payments, body["paymentId"]: allocations},
            credit=state.credit + body["creditMinor"],
        )
    if kind == "dunning.PaymentReversed":
        allocations = state.payments.get(body["paymentId"], ())
        return _with_amounts(
            state, {b: {"paid": -amount} for b, amount in allocations}, at,
            credit=state.credit - body["creditRemovedMinor"],
        )
    if kind == "dunning.HoldApplied":
        holds = {**state.holds, body["ticketId"]: (body["billId"], body["heldMinor"])}
        return _with_amounts(state, {body["billId"]: {"held": body["heldMinor"]}}, at, holds=holds)
    if kind == "dunning.HoldReleased":
        holds = {t: h for t, h in state.holds.items() if t != body["ticketId"]}
        return _with_amounts(state, {body["billId"]: {"held": -body["releasedMinor"]}}, at, holds=holds)
    if kind == "dunning.CreditApplied":
        return _with_amounts(state, {body["billId"]: {"credited": body["creditMinor"]}}, at)
    if kind == "dunning.OccurrenceOpened":
        occurrence = Occurrence(
            occurrence_id=body["occurrenceId"],
            bill_id=body["billId"],
            anchor=parse_rfc3339(body["anchorDate"]),
            offence_count=body["offenceCount"],
            pending_timers=frozenset({timer["timerId"]}) if timer else frozenset(),
        )
        return replace(state, occurrences=state.occurrences + (occurrence,))
    if kind == "dunning.OccurrenceClosed":
        return replace(state, occurrences=_replace_occurrence(state, body["occurrenceId"], closed=True, pending_timers=frozenset()))
    if kind == "dunning.OccurrenceWithdrawn":
        return replace(state, occurrences=tuple(o for o in state.occurrences if o.occurrence_id != body["occurrenceId"]))
    if kind == "dunning.OccurrenceReopened":
        occurrence = state.occurrence(body["occurrenceId"])
        return replace(
            state,
            occurrences=_replace_occurrence(
                state, body["occurrenceId"], closed=False,
                pending_timers=occurrence.pending_timers | ({timer["timerId"]} if timer else set()),
            ),
        )
    if kind == "dunning.ReminderScheduled":
        occurrence = state.occurrence(body["occurrenceId"])
        return replace(
            state,
            occurrences=_replace_occurrence(
                state, body["occurrenceId"], pending_timers=occurrence.pending_timers | {timer["timerId"]}
            ),
        )
    if kind in ("dunning.ReminderDue", "dunning.ReminderSkipped", "dunning.SuspensionRequested", "dunning.EscalationSkipped"):
        occurrence = state.occurrence(body["occurrenceId"])
        if occurrence is None:
            return state
        fired = frozenset({body["firedTimerId"]}) if body.get("firedTimerId") else frozenset()
        sent = 1 if kind == "dunning.ReminderDue" else 0
        state = replace(
            state,
            occurrences=_replace_occurrence(
                state, body["occurrenceId"], pending_timers=occurrence.pending_timers - fired,
                reminders_sent=occurrence.reminders_sent + sent,
            ),
        )
        if kind == "dunning.ReminderDue":
            state = replace(state, reminders={**state.reminders, decision["decisionId"]: body["occurrenceId"]})
        if kind == "dunning.SuspensionRequested":
            state = replace(state, suspension="requested")
        return state
    if kind == "dunning.LateFeeCharged":
        occurrence = state.occurrence(body["occurrenceId"])
        return replace(state, occurrences=_replace_occurrence(state, body["occurrenceId"], fee_charged=occurrence.fee_charged + body["feeMinor"]))
    if kind == "dunning.DeliveryRecorded":
        return replace(state, deliveries={**state.deliveries, body["reminderId"]: body["delivered"]})
    if kind == "dunning.SuspensionAnswered":
        return replace(state, suspension="suspended" if body["suspended"] else "none")
    if kind == "dunning.RestorationRequested":
        return replace(state, suspension="restorationRequested")
    if kind == "dunning.RestorationRecorded":
        return replace(state, suspension="none")
    return state
