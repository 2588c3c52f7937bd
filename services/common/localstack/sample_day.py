"""A small, realistic sample day of upstream events, so a newcomer sees decisions at once.

Deterministic for a given (day, accounts, seed). Bills fell due yesterday, so dunning's
due-date checks fire as soon as the workers run; some accounts were late last month too,
so they are repeat offenders. A few malformed events show the dead-letter path.
"""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.envelope import encode_event
from schemas.registry import partition_key

from ..ids import derived_id

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

    def _emit(self, topic: str, when: datetime, payload: dict, name: str) -> None:
        value = encode_event(
            topic,
            payload,
            event_id=derived_id("sample", self.day.isoformat(), topic, name),
            event_time=when,
            source="sample-bss",
            correlation_id=f"sample-{self.day.isoformat()}",
        )
        self.messages.append((topic, partition_key(topic, payload).encode(), value))

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

    def build(self) -> list[tuple[str, bytes | None, bytes]]:
        rng = self.rng
        this_cycle = self.day - timedelta(days=15)  # due yesterday
        last_cycle = this_cycle - timedelta(days=30)
        for n in range(1, self.accounts + 1):
            account = f"ACC-{n:05d}"
            customer = {"creditLevel": rng.choice(LEVELS), "customerTier": rng.choices(TIERS, (1, 3, 8, 30))[0], "important": n % 50 == 0}
            habit = rng.choices(("onTime", "lateOnce", "repeat"), (70, 20, 10))[0]
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
            if habit == "onTime":
                paid = bill["billDate"] + timedelta(days=rng.randint(1, 12))
                self._emit("billing.payment.v1", paid, {
                    "paymentId": f"PAY-{account}", "accountId": account, "billId": bill["billId"],
                    "amount": bill["amountDue"], "paymentDate": paid, "status": "received", "channel": "wechatPay",
                }, f"{account}-pay")
            self._usage(account)
        self._cards()
        self._malformed()
        return self.messages

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
        serials = [f"CARD-{self.day:%Y%m%d}-{i:04d}" for i in range(20)]
        issued = _at(self.day - timedelta(days=30))
        self._emit("cards.inventory.v1", issued, {
            "action": "batchIssued", "cardSerials": serials, "batchId": f"BATCH-{self.day:%Y%m%d}",
            "outletId": "OUTLET-NJ-01", "faceValue": _money(5_000),
        }, "batch")
        for serial in serials[:5]:
            self._emit("cards.complaint.v1", _at(self.day, 10), {
                "complaintId": f"CMP-{serial}", "cardSerial": serial, "outletId": "OUTLET-NJ-01",
                "problem": "chargeDeductedWithoutService", "chargeRelated": True, "receivedBy": "clerk-07",
            }, f"complaint-{serial}")

    def _malformed(self) -> None:
        self.messages.append(("billing.bill.v1", b"ACC-BROKEN", b"{not json"))
        self.messages.append(("billing.payment.v1", b"ACC-00001", b'{"eventId": "x", "eventType": "billing.payment.v1"}'))


def sample_day(day: date, accounts: int = 200, seed: int = 17) -> list[tuple[str, bytes | None, bytes]]:
    return SampleDay(day, accounts, seed).build()
