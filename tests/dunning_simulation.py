"""A 90-day dunning workload with mixed payment behaviour, and what must come of it,
computed independently of the dunning domain (for the simulation tests)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.encoding import encode_event
from services.common.ids import derived_id

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 7, 1, tzinfo=SHANGHAI)
END = START + timedelta(days=90)
BEHAVIOURS = (("onTime", 45), ("lateOnce", 15), ("chronic", 10), ("partial", 10), ("bounced", 5),
              ("disputer", 10), ("neverPays", 5))
LEVELS, TIERS = "ABCDE", ("diamond", "gold", "silver", "standard")


@dataclass
class SimBill:
    bill_id: str
    amount: int
    issued: datetime
    due: datetime
    moves: list = field(default_factory=list)  # (time, +paid / -reversed)
    disputed_at: datetime | None = None

    def owed_at(self, moment: datetime) -> int:
        if self.disputed_at is not None and self.disputed_at <= moment:
            return 0
        return max(0, self.amount - sum(v for t, v in self.moves if t <= moment))


@dataclass
class SimAccount:
    account_id: str
    behaviour: str
    level: str
    tier: str
    bills: list = field(default_factory=list)


@dataclass
class Simulation:
    accounts: list
    messages: list  # (business time, topic, key, value), sorted by business time

    def bills(self):
        for account in self.accounts:
            for bill in account.bills:
                yield account, bill

    def expected_occurrences(self) -> dict[tuple[str, str], int]:
        """(account, bill) -> offence count, for every bill still owed after its due date."""
        out = {}
        for account in self.accounts:
            count = 0
            for bill in account.bills:
                if bill.due < END and any(bill.owed_at(t) > 0 for t in _moments_after(bill)):
                    count += 1
                    out[(account.account_id, bill.bill_id)] = count
        return out

    def expected_late_fee(self, account_id: str, bill_id: str, until: datetime) -> int:
        bill = next(b for a, b in self.bills() if a.account_id == account_id and b.bill_id == bill_id)
        days = (until - bill.due) // timedelta(days=1)
        return sum(bill.owed_at(bill.due + timedelta(days=k)) for k in range(days)) * 3 // 1000


def _moments_after(bill: SimBill):
    yield bill.due + timedelta(seconds=1)
    for t, _ in bill.moves:
        if t > bill.due and t < END:
            yield t


def _money(fen: int) -> dict:
    return {"amountMinor": fen, "currency": "CNY"}


def simulate(accounts: int, seed: int = 7) -> Simulation:
    rng = random.Random(seed)
    sim_accounts, messages = [], []

    def emit(when: datetime, topic: str, key: str, payload: dict, name: str):
        value = encode_event(topic, payload, event_id=derived_id("sim", seed, name), event_time=when, source="sim-bss")
        messages.append((when, topic, key.encode(), value))

    names = [b for b, _ in BEHAVIOURS]
    weights = [w for _, w in BEHAVIOURS]
    for n in range(accounts):
        account = SimAccount(f"SIM-{seed}-{n:05d}", rng.choices(names, weights)[0], rng.choice(LEVELS),
                             rng.choices(TIERS, (1, 3, 8, 30))[0])
        sim_accounts.append(account)
        for cycle in range(3):
            issued = (START + timedelta(days=30 * cycle)).replace(hour=9)
            due = issued + timedelta(days=14, hours=rng.choice((9, 14, 21)))  # some due times fall in quiet hours
            bill = SimBill(f"BILL-{account.account_id}-{cycle}", rng.randint(2_000, 40_000), issued, due)
            account.bills.append(bill)
            emit(issued, "billing.bill.v1", account.account_id, {
                "billId": bill.bill_id, "billNo": f"{cycle}{n:05d}", "accountId": account.account_id,
                "billingPeriod": {"startDateTime": issued - timedelta(days=30), "endDateTime": issued - timedelta(seconds=1)},
                "billDate": issued, "paymentDueDate": due, "amountDue": _money(bill.amount), "state": "sent",
                "customer": {"creditLevel": account.level, "customerTier": account.tier, "important": False,
                             "accountManagerId": f"AM-{n % 7}" if account.tier in ("diamond", "gold") else None},
            }, f"{bill.bill_id}-bill")
            _pay(account, bill, cycle, rng, emit)
    messages.sort(key=lambda m: m[0])
    return Simulation(sim_accounts, messages)


def _pay(account: SimAccount, bill: SimBill, cycle: int, rng: random.Random, emit) -> None:
    def pay(when: datetime, fen: int, tag: str, status: str = "received", reverses: str | None = None):
        payment_id = f"PAY-{bill.bill_id}-{tag}"
        payload = {"paymentId": payment_id, "accountId": account.account_id, "billId": bill.bill_id,
                   "amount": _money(fen), "paymentDate": when, "status": status, "channel": "bank"}
        if reverses:
            payload["reversesPaymentId"] = reverses
        if when < END:
            bill.moves.append((when, fen if status == "received" else -fen))
            emit(when, "billing.payment.v1", account.account_id, payload, payment_id)

    behaviour = account.behaviour
    if behaviour == "onTime" or (behaviour == "lateOnce" and cycle > 0) or (behaviour == "disputer" and cycle > 0):
        pay(bill.due - timedelta(days=rng.randint(1, 10)), bill.amount, "full")
    elif behaviour == "lateOnce" or (behaviour == "chronic" and cycle == 0):
        pay(bill.due + timedelta(days=rng.randint(2, 20)), bill.amount, "late")
    elif behaviour == "chronic":
        pay(bill.due + timedelta(days=rng.randint(31, 40)), bill.amount, "late")
    elif behaviour == "partial":
        half = bill.amount // 2
        pay(bill.due - timedelta(days=2), half, "part1")
        pay(bill.due + timedelta(days=12, hours=3), bill.amount - half, "part2")
    elif behaviour == "bounced":
        pay(bill.due - timedelta(days=2), bill.amount, "first")
        pay(bill.due + timedelta(days=4), bill.amount, "bounce", status="reversed", reverses=f"PAY-{bill.bill_id}-first")
        pay(bill.due + timedelta(days=10), bill.amount, "again")
    elif behaviour == "disputer":
        bill.disputed_at = bill.due - timedelta(days=5)
    # neverPays: nothing


def dispute_event(account_id: str, bill: SimBill) -> dict:
    """The guard's DisputeOpened as dunning reads it, for the pure simulation."""
    return {"billId": bill.bill_id, "ticketId": f"T-{bill.bill_id}", "disputedAmountMinor": bill.amount,
            "hold": {"billId": bill.bill_id, "amountMinor": bill.amount, "billState": "onHold"}}


def dispute_message(account_id: str, bill: SimBill, seed: int):
    payload = {"ticketId": f"T-{bill.bill_id}", "ticketType": "Bill Dispute", "action": "open", "accountId": account_id,
               "billId": bill.bill_id, "disputedItems": [f"{bill.bill_id}-L1"], "disputedAmount": _money(bill.amount),
               "reason": "charges not recognised", "channel": "hotline", "actorId": "agent-001"}
    value = encode_event("billing.dispute.v1", payload, event_id=derived_id("sim", seed, bill.bill_id, "dispute"),
                         event_time=bill.disputed_at, source="sim-crm")
    return (bill.disputed_at, "billing.dispute.v1", account_id.encode(), value)
