"""A deterministic, realistic workload built with schemas.envelope.encode_event.

Every message is (topic, key, value) keyed by schemas.registry.partition_key, like a real
producer. Times are relative to `now` so the guard rates every CDR (tariff in force, nothing
stale, nothing in the future) and dunning finds bills already due.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.encoding import encode_event
from schemas.registry import partition_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
USAGE = (("voice", 70), ("sms", 20), ("data", 10))
DESTINATIONS = (("local", 60), ("domestic", 30), ("international", 5), ("roaming", 5))

Message = tuple[str, bytes, bytes]


def _msg(topic: str, payload: dict, when: datetime, rng: random.Random) -> tuple[str, Message]:
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    value = encode_event(topic, payload, event_id=event_id, event_time=when, source="bench-bss")
    return event_id, (topic, partition_key(topic, payload).encode(), value)


def money(fen: int) -> dict:
    return {"amountMinor": fen, "currency": "CNY"}


def tariff_rates() -> list[dict]:
    return [
        {"usageType": u, "destinationClass": d, "ratePerMinuteMinor": {"local": 10, "domestic": 15,
         "international": 80, "roaming": 60}[d], "incrementSeconds": 60 if u == "voice" else 1,
         "connectFeeMinor": 0,
         **({"timeBands": [{"startTime": "23:00", "endTime": "07:00", "ratePerMinuteMinor": 5}]}
            if u == "voice" and d == "local" else {})}
        for u, _ in USAGE for d, _ in DESTINATIONS
    ]


class Workload:
    def __init__(self, accounts: int = 5000, switches: int = 8, seed: int = 7, now: datetime | None = None,
                 tag: str = "B"):
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(SHANGHAI)).replace(microsecond=0)
        self.accounts = [f"ACC-{tag}-{i:06d}" for i in range(accounts)]
        self.switches = [f"SW-{tag}-{i:02d}" for i in range(switches)]
        self.sequence = {s: 0 for s in self.switches}
        self.tag = tag
        self.cdr_count = 0

    # -- billing_guard --------------------------------------------------------------
    def tariff(self, tariff_id: str = "T-STD") -> tuple[str, Message]:
        at = self.now - timedelta(days=40)
        return _msg("billing.tariff.v1", {
            "tariffId": tariff_id, "version": 1, "name": "标准资费 bench", "publishedAt": at,
            "effectiveFrom": at + timedelta(days=1), "freeAllowanceSeconds": 600, "rates": tariff_rates(),
        }, at, self.rng)

    def cdr(self, account: str | None = None) -> tuple[str, Message]:
        rng = self.rng
        account = account or rng.choice(self.accounts)
        switch = rng.choice(self.switches)
        self.sequence[switch] += 1
        self.cdr_count += 1
        usage = rng.choices([u for u, _ in USAGE], [w for _, w in USAGE])[0]
        seconds = rng.randint(1, 1800) if usage == "voice" else (0 if usage == "sms" else rng.randint(10, 3600))
        # Ended (and collected) before `now`: no event time in the future, so the business
        # clock is a function of the inputs, not of when they were processed.
        start = self.now - timedelta(days=rng.randint(0, 6), seconds=rng.randint(600, 86_000) + seconds + 60)
        payload = {
            "usageId": f"U-{self.tag}-{self.cdr_count:09d}", "switchId": switch,
            "originId": f"O-{self.tag}-{self.cdr_count:09d}", "sequenceNumber": self.sequence[switch],
            "accountId": account, "callingNumber": f"138{rng.randint(0, 10**8 - 1):08d}",
            "calledNumber": f"139{rng.randint(0, 10**8 - 1):08d}", "usageType": usage,
            "destinationClass": rng.choices([d for d, _ in DESTINATIONS], [w for _, w in DESTINATIONS])[0],
            "startDateTime": start, "endDateTime": start + timedelta(seconds=seconds), "durationSeconds": seconds,
            "collection": rng.choice(("online", "offline")), "areaCode": "025", "province": "江苏",
        }
        if usage == "data":
            payload["volumeBytes"] = rng.randint(1_000, 50_000_000)
        return _msg("billing.cdr.v1", payload, start + timedelta(seconds=seconds + 30), self.rng)

    def bill(self, account: str, days_overdue: int = 2, fen: int | None = None, n: int = 0) -> tuple[str, Message]:
        due = self.now.replace(hour=12, minute=0, second=0) - timedelta(days=days_overdue)
        period_end = due - timedelta(days=15)
        return _msg("billing.bill.v1", {
            "billId": f"BILL-{account}-{n}", "billNo": f"NO-{account}-{n}", "accountId": account,
            "billingPeriod": {"startDateTime": period_end - timedelta(days=30), "endDateTime": period_end},
            "billDate": due - timedelta(days=14), "paymentDueDate": due,
            "amountDue": money(fen if fen is not None else self.rng.randint(1_000, 40_000)), "state": "sent",
            "customer": {"creditLevel": self.rng.choice("ABCDE"),
                         "customerTier": self.rng.choices(("diamond", "gold", "silver", "standard"), (1, 3, 8, 30))[0],
                         "important": self.rng.random() < 0.02},
        }, due - timedelta(days=14), self.rng)

    def payment(self, account: str, bill_n: int = 0, fen: int = 1000, days_ago: int = 1) -> tuple[str, Message]:
        when = self.now - timedelta(days=days_ago, hours=1)
        return _msg("billing.payment.v1", {
            "paymentId": f"PAY-{account}-{bill_n}", "accountId": account, "billId": f"BILL-{account}-{bill_n}",
            "amount": money(fen), "paymentDate": when, "status": "received", "channel": "wechatPay",
        }, when, self.rng)

    def dispute(self, account: str) -> tuple[str, Message]:
        when = self.now - timedelta(hours=2)
        return _msg("billing.dispute.v1", {
            "ticketId": f"TT-{account}", "ticketType": "Bill Dispute", "action": "open", "accountId": account,
            "billId": f"BILL-{account}-0", "disputedItems": [f"U-{account}-x"], "disputedAmount": money(500),
            "reason": "客户称重复计费", "channel": "hotline", "actorId": "CSR-0001",
        }, when, self.rng)

    def guard_mix(self, n_cdrs: int) -> list[tuple[str, Message]]:
        """Mostly CDRs; about 1 % bills, 0.5 % payments, 0.1 % disputes, spread through the stream."""
        out = []
        billed = 0
        for i in range(n_cdrs):
            out.append(self.cdr())
            if i % 100 == 50 and billed < len(self.accounts):
                account = self.accounts[billed]
                billed += 1
                out.append(self.bill(account))
                if billed % 2:
                    out.append(self.payment(account))
                if billed % 10 == 0:
                    out.append(self.dispute(account))
        return out

    # -- cards ----------------------------------------------------------------------
    def card_batch(self, outlet: str, serials: list[str]) -> tuple[str, Message]:
        when = self.now - timedelta(days=20)
        return _msg("cards.inventory.v1", {
            "action": "batchIssued", "cardSerials": serials, "batchId": f"BATCH-{outlet}",
            "outletId": outlet, "faceValue": money(5_000), "expiresAt": self.now + timedelta(days=400),
        }, when, self.rng)

    def card_activation(self, outlet: str, serial: str) -> tuple[str, Message]:
        return _msg("cards.inventory.v1", {"action": "activated", "cardSerial": serial, "outletId": outlet},
                    self.now - timedelta(days=10), self.rng)

    def card_use(self, serial: str, fen: int) -> tuple[str, Message]:
        return _msg("cards.inventory.v1", {"action": "used", "cardSerial": serial, "amount": money(fen)},
                    self.now - timedelta(days=5), self.rng)

    def complaint(self, outlet: str, serial: str, when: datetime | None = None) -> tuple[str, Message]:
        return _msg("cards.complaint.v1", {
            "complaintId": f"CMP-{serial}", "cardSerial": serial, "outletId": outlet,
            "problem": "chargeDeductedWithoutService", "chargeRelated": True,
            "wronglyConsumed": money(120), "receivedBy": "STAFF-01",
        }, when or self.now, self.rng)
