"""A small, realistic sample day of upstream events, so a newcomer sees decisions at once.

Deterministic for a given (day, accounts, seed). Bills fell due yesterday, so dunning's
due-date checks fire as soon as the workers run; some accounts were late last month too,
so they are repeat offenders. The guard gets a tariff catalogue (so calls are rated), planned
works, customer-data changes and disputes (sample_catalogue.py). A few bad events show the
dead-letter path.
"""
from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.encoding import encode_event
from schemas.registry import partition_key

from ..ids import derived_id
from . import sample_catalogue as guard_side

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEVELS = ("A", "B", "C", "D", "E")
TIERS = ("diamond", "gold", "silver", "standard")


def _at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def _money(fen: int) -> dict:
    return {"amountMinor": fen, "currency": "CNY"}


class SampleDay:
    def __init__(self, day: date, accounts: int = 200, seed: int = 17):
        self.day = day
        self.accounts = accounts
        self.rng = random.Random(seed)
        self.messages: list[tuple[str, bytes | None, bytes]] = []
        self.stock: list[tuple[str, bytes | None, bytes]] = []
        self.complaints: list[tuple[str, bytes | None, bytes]] = []
        self.overdue: list[tuple[str, str, int]] = []  # (account, bill id, amount) unpaid at the due date

    def _emit(self, topic: str, when: datetime, payload: dict, name: str) -> None:
        self.messages.append(self._message(topic, when, payload, name))

    def _message(self, topic: str, when: datetime, payload: dict, name: str) -> tuple[str, bytes | None, bytes]:
        value = encode_event(
            topic,
            payload,
            event_id=derived_id("sample", self.day.isoformat(), topic, name),
            event_time=when,
            source="sample-bss",
            correlation_id=f"sample-{self.day.isoformat()}",
        )
        return topic, partition_key(topic, payload).encode(), value

    def _bill(self, account: str, customer: dict, cycle: date, fen: int) -> dict:
        cycle_end = cycle.replace(day=1) - timedelta(days=1)
        return {
            "billId": f"BILL-{account}-{cycle:%Y%m}",
            "billNo": f"{cycle:%Y%m}{account[-5:]}",
            "accountId": account,
            "billingPeriod": {"startDateTime": _at(cycle_end.replace(day=1), 0), "endDateTime": _at(cycle_end, 23, 59)},
            "billDate": _at(cycle),
            "paymentDueDate": _at(cycle + timedelta(days=14), 23, 59),
            "amountDue": _money(fen),
            "state": "sent",
            "customer": customer,
        }

    def build(self) -> list[list[tuple[str, bytes | None, bytes]]]:
        """Three waves: card stock, the day, then card complaints. Kafka keeps order only within
        a partition of one topic, and stock is keyed by batch while sales are keyed by card:
        each wave is published once the one before has been decided."""
        rng = self.rng
        this_cycle = self.day - timedelta(days=15)  # due yesterday
        last_cycle = this_cycle - timedelta(days=30)
        for n in range(1, self.accounts + 1):
            account = f"ACC-{n:05d}"
            customer = {"creditLevel": rng.choice(LEVELS), "customerTier": rng.choices(TIERS, (1, 3, 8, 30))[0], "important": n % 50 == 0}
            # Some pay this morning, a little late: dunning's business clock (the latest time
            # among its inputs) reaches today, so yesterday's due dates are checked.
            habit = "paysToday" if n == 1 else rng.choices(("onTime", "lateOnce", "repeat", "paysToday"), (65, 20, 10, 5))[0]
            if habit == "repeat":
                old = self._bill(account, customer, last_cycle, rng.randint(3_000, 30_000))
                self._emit("billing.bill.v1", old["billDate"], old, f"{account}-bill-old")
                paid_late = old["paymentDueDate"] + timedelta(days=6)
                self._emit("billing.payment.v1", paid_late, {
                    "paymentId": f"PAY-{account}-old", "accountId": account, "billId": old["billId"],
                    "amount": old["amountDue"], "paymentDate": paid_late, "status": "received", "channel": "bankTransfer",
                }, f"{account}-pay-old")
            bill = self._bill(account, customer, this_cycle, rng.randint(3_000, 30_000))
            self._emit("billing.bill.v1", bill["billDate"], bill, f"{account}-bill")
            if habit in ("lateOnce", "repeat"):
                self.overdue.append((account, bill["billId"], bill["amountDue"]["amountMinor"]))
            if habit in ("onTime", "paysToday"):
                paid = bill["billDate"] + timedelta(days=rng.randint(1, 12)) if habit == "onTime" else _at(self.day, 9, n % 60)
                self._emit("billing.payment.v1", paid, {
                    "paymentId": f"PAY-{account}", "accountId": account, "billId": bill["billId"],
                    "amount": bill["amountDue"], "paymentDate": paid, "status": "received", "channel": "wechatPay",
                }, f"{account}-pay")
            self._usage(account)
        self._guard_side(this_cycle)
        self._cards()
        self._malformed()
        return [self.stock, self.messages, self.complaints]

    def _guard_side(self, this_cycle: date) -> None:
        """Tariffs and planned works go with the stock (calls are rated against them, and they
        travel on other topics, so they must be decided first); disputes go with the complaints
        (they need the disputed charges)."""
        day = self.day
        for when, payload, name in guard_side.tariff_versions(day):
            self.stock.append(self._message("billing.tariff.v1", when, payload, name))
        for when, payload, name in guard_side.planned_works(day):
            self.stock.append(self._message("billing.cutover.v1", when, payload, name))
        for when, payload, name in guard_side.customer_changes(day, "ACC-00002"):
            self._emit("billing.customer.v1", when, payload, name)
        cut_account = "ACC-00003"
        for when, payload, name in [*guard_side.cutover_calls(day, cut_account), guard_side.insane_call(day, cut_account)]:
            self._emit("billing.cdr.v1", when, payload, name)
        if not self.overdue:
            return
        held_account, held_bill, held_fen = self.overdue[0]
        cut_bill = f"BILL-{cut_account}-{this_cycle:%Y%m}"
        for when, payload, name in guard_side.disputes(day, cut_account, cut_bill, held_account, held_bill, held_fen // 3):
            self.complaints.append(self._message("billing.dispute.v1", when, payload, name))

    def _usage(self, account: str) -> None:
        rng = self.rng
        for i in range(3):
            start = _at(self.day, rng.randint(8, 21), rng.randint(0, 59))
            seconds = rng.randint(5, 900)
            self._emit("billing.cdr.v1", start, {
                "usageId": f"CDR-{account}-{i}", "switchId": f"SW-{rng.randint(1, 4):02d}",
                "originId": f"{account}-{i}", "sequenceNumber": rng.randint(1, 10**6), "accountId": account,
                "callingNumber": f"1380000{rng.randint(0, 9999):04d}", "calledNumber": f"1390000{rng.randint(0, 9999):04d}",
                "usageType": "voice", "destinationClass": rng.choice(("local", "domestic")),
                "startDateTime": start, "endDateTime": start + timedelta(seconds=seconds), "durationSeconds": seconds,
                "collection": "online",
            }, f"{account}-cdr-{i}")

    def _cards(self) -> None:
        """Stock arrives first (its own wave: keyed by batch, it must not be overtaken by the
        sales keyed by card); then cards are sold, used, and five draw a complaint."""
        serials = [f"CARD-{self.day:%Y%m%d}-{i:04d}" for i in range(20)]
        issued = _at(self.day - timedelta(days=30))
        outlet = "OUTLET-NJ-01"
        self.stock.append(self._message("cards.inventory.v1", issued, {
            "action": "batchIssued", "cardSerials": serials, "batchId": f"BATCH-{self.day:%Y%m%d}",
            "outletId": outlet, "faceValue": _money(5_000),
        }, "batch"))
        for serial in serials[:8]:
            sold = _at(self.day - timedelta(days=10))
            self._emit("cards.inventory.v1", sold, {"action": "activated", "cardSerial": serial, "outletId": outlet},
                       f"sold-{serial}")
            self._emit("cards.inventory.v1", sold + timedelta(days=2), {
                "action": "used", "cardSerial": serial, "amount": _money(self.rng.randint(100, 2_000)),
            }, f"used-{serial}")
        for serial in serials[:5]:  # a wave of their own: customers complain after they bought
            self.complaints.append(self._message("cards.complaint.v1", _at(self.day, 10), {
                "complaintId": f"CMP-{serial}", "cardSerial": serial, "outletId": outlet,
                "problem": "chargeDeductedWithoutService", "chargeRelated": True, "receivedBy": "clerk-07",
            }, f"complaint-{serial}"))

    def _malformed(self) -> None:
        self.messages.append(("billing.bill.v1", b"ACC-BROKEN", b"{not json"))
        self.messages.append(("billing.payment.v1", b"ACC-00001", b'{"eventId": "x", "eventType": "billing.payment.v1"}'))


def sample_day(day: date, accounts: int = 200, seed: int = 17) -> list[list[tuple[str, bytes | None, bytes]]]:
    """The sample day as waves of messages, to publish one after the other."""
    return SampleDay(day, accounts, seed).build()


async def publish_sample_day(bootstrap: str, day: date, accounts: int = 200, settled=None) -> int:
    """Publish the waves in order; `settled` (async, optional) waits until a wave is decided."""
    from .publish import publish

    sent = 0
    for number, wave in enumerate(sample_day(day, accounts)):
        if number and settled is not None:
            await settled()
        sent += await publish(bootstrap, wave)
    return sent


async def wait_until_quiet(database_url: str, quiet_s: float = 1.5, timeout_s: float = 60) -> None:
    """Until the workers have decided (or dead-lettered) nothing new for `quiet_s`."""
    from ..db import connection

    async with connection(database_url) as conn:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last, quiet_since = -1, loop.time()
        while loop.time() < deadline:
            count = await conn.fetchval(
                "SELECT (SELECT count(*) FROM processed_inputs) + (SELECT count(*) FROM dead_lettered_inputs)"
            )
            if count != last:
                last, quiet_since = count, loop.time()
            elif count > 0 and loop.time() - quiet_since >= quiet_s:
                return
            await asyncio.sleep(0.2)
