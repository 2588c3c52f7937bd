"""An account's arrears as dunning sees it: its bills, occurrences, payments, reminders and holds.

Folded from dunning's own decisions by evolve.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
