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

    @property
    def outstanding(self) -> int:
        return max(0, self.amount_due - self.paid)


@dataclass(frozen=True)
class Occurrence:
    occurrence_id: str
    bill_id: str
    anchor: datetime  # the due date it started from; a partial payment never moves it
    offence_count: int
    closed: bool = False


@dataclass(frozen=True)
class AccountState:
    bills: dict = field(default_factory=dict)  # bill id -> Bill
    occurrences: tuple = ()  # Occurrence, oldest first
    payments: dict = field(default_factory=dict)  # payment id -> ((bill id, amount), ...)
    credit: int = 0  # overpayment carried to later bills

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


def _with_paid(state: AccountState, allocations, sign: int) -> dict:
    bills = dict(state.bills)
    for bill_id, amount in allocations:
        bill = bills[bill_id]
        bills[bill_id] = replace(bill, paid=bill.paid + sign * amount)
    return bills


def _set_occurrence(state: AccountState, occurrence_id: str, closed: bool) -> tuple:
    return tuple(
        replace(o, closed=closed) if o.occurrence_id == occurrence_id else o for o in state.occurrences
    )


def evolve(state: AccountState, decision: dict) -> AccountState:
    kind = decision["decisionType"]
    body = decision["payload"]
    if kind == "dunning.BillTracked":
        bill = Bill(
            bill_id=body["billId"],
            amount_due=body["amountDueMinor"],
            paid=body["creditAppliedMinor"],
            due_at=parse_rfc3339(body["paymentDueDate"]),
            credit_level=body["creditLevel"],
            tier=body["customerTier"],
        )
        return replace(state, bills={**state.bills, bill.bill_id: bill}, credit=state.credit - body["creditAppliedMinor"])
    if kind == "dunning.PaymentApplied":
        allocations = tuple((a["billId"], a["amountMinor"]) for a in body["allocations"])
        return replace(
            state,
            bills=_with_paid(state, allocations, +1),
            payments={**state.payments, body["paymentId"]: allocations},
            credit=state.credit + body["creditMinor"],
        )
    if kind == "dunning.PaymentReversed":
        allocations = state.payments.get(body["paymentId"], ())
        return replace(
            state,
            bills=_with_paid(state, allocations, -1),
            credit=state.credit - body["creditRemovedMinor"],
        )
    if kind == "dunning.OccurrenceOpened":
        occurrence = Occurrence(
            occurrence_id=body["occurrenceId"],
            bill_id=body["billId"],
            anchor=parse_rfc3339(body["anchorDate"]),
            offence_count=body["offenceCount"],
        )
        return replace(state, occurrences=state.occurrences + (occurrence,))
    if kind == "dunning.OccurrenceClosed":
        return replace(state, occurrences=_set_occurrence(state, body["occurrenceId"], closed=True))
    if kind == "dunning.OccurrenceWithdrawn":
        return replace(state, occurrences=tuple(o for o in state.occurrences if o.occurrence_id != body["occurrenceId"]))
    if kind == "dunning.OccurrenceReopened":
        return replace(state, occurrences=_set_occurrence(state, body["occurrenceId"], closed=False))
    return state
