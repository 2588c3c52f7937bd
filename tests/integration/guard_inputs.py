"""Builders of real, contract-valid billing_guard inputs as (topic, bytes), for the
integration, CLI and e2e tests (encode_event validates each one as a consumer would)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from schemas.encoding import encode_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALLING, CALLED = "13812345678", "13987654321"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ev(topic: str, payload: dict, when: datetime, event_id=None) -> tuple[str, bytes]:
    return topic, encode_event(topic, payload, event_id=event_id or uuid.uuid4(), event_time=when, source="test-bss")


def rates(per_min: int, inc: int = 60, connect: int = 0) -> list[dict]:
    return [{"usageType": u, "destinationClass": d, "ratePerMinuteMinor": per_min, "incrementSeconds": inc,
             "connectFeeMinor": connect} for u in ("voice", "sms", "data")
            for d in ("local", "domestic", "international", "roaming")]


def tariff(tariff_id: str, version: int, effective: datetime, per_min: int, at: datetime, published=None, **extra):
    return ev("billing.tariff.v1", {"tariffId": tariff_id, "version": version, "name": f"{tariff_id} v{version}",
                                    "publishedAt": published or at, "effectiveFrom": effective,
                                    "rates": rates(per_min), **extra}, at)


def cdr(account: str, switch: str, seq: int, start: datetime, seconds: int = 120, origin=None, usage_id=None,
        received=None, area=None, event_id=None):
    return ev("billing.cdr.v1", {
        "usageId": usage_id or uid("U"), "switchId": switch, "originId": origin or f"O-{seq}",
        "sequenceNumber": seq, "accountId": account, "callingNumber": CALLING, "calledNumber": CALLED,
        "usageType": "voice", "destinationClass": "local", "startDateTime": start,
        "endDateTime": start + timedelta(seconds=max(seconds, 0)), "durationSeconds": seconds,
        "collection": "offline", **({"areaCode": area} if area else {})},
        received or start + timedelta(minutes=2), event_id=event_id)


def cycle_start(cycle: str) -> datetime:
    return datetime(int(cycle[:4]), int(cycle[5:7]), 1, tzinfo=SHANGHAI)


def bill(account: str, bill_id: str, cycle: str, fen: int, when=None, important=False):
    start = cycle_start(cycle)
    end = (start + timedelta(days=32)).replace(day=1)
    return ev("billing.bill.v1", {
        "billId": bill_id, "billNo": bill_id, "accountId": account,
        "billingPeriod": {"startDateTime": start, "endDateTime": end}, "billDate": end + timedelta(days=1),
        "paymentDueDate": end + timedelta(days=15), "amountDue": {"amountMinor": fen, "currency": "CNY"},
        "state": "sent", "customer": {"creditLevel": "B", "customerTier": "standard", "important": important}},
        when or end + timedelta(days=1))


def customer(account: str, name: str, old, new, when: datetime, role="billingAdmin", operator="op-1",
             approver=None, requested=None, request_id=None):
    payload = {"requestId": request_id or uid("R"), "accountId": account, "field": name, "oldValue": old,
               "newValue": new, "operatorId": operator, "operatorRole": role, "channel": "counter",
               "reason": "customer request"}
    if approver:
        payload["approverId"] = approver
    if requested:
        payload["requestedEffectiveFrom"] = requested
    return ev("billing.customer.v1", payload, when)


def fen(amount: int) -> dict:
    return {"amountMinor": amount, "currency": "CNY"}


def dispute(account: str, ticket: str, action: str, when: datetime, actor="agent-1", reason="customer says wrong",
            **extra):
    payload = {"ticketId": ticket, "ticketType": "Bill Dispute", "action": action, "accountId": account,
               "reason": reason, "channel": "hotline", "actorId": actor, **extra}
    return ev("billing.dispute.v1", payload, when)


def payment(account: str, payment_id: str, when: datetime, amount: int, status="received", bill_id=None):
    payload = {"paymentId": payment_id, "accountId": account, "amount": fen(amount), "paymentDate": when,
               "status": status, "channel": "counter"}
    if bill_id:
        payload["billId"] = bill_id
    return ev("billing.payment.v1", payload, when)


def restored(account: str, when: datetime, order_id: str | None = None):
    payload = {"accountId": account, "completedAt": when, "networkSystem": "hlr-nj-02"}
    if order_id:
        payload["restorationOrderId"] = order_id
    return ev("billing.restoration.v1", payload, when)


def work(work_id: str, when: datetime, start: datetime, hours=4, provinces=("Jiangsu",), approvals=(), notices=(),
         vip=False, switches=("SW1",), areas=("025",), accounts=("A1",), action="planned", outage=None):
    payload = {"workId": work_id, "action": action, "workKind": "cutover", "provinces": list(provinces),
               "areas": list(areas), "switchIds": list(switches), "plannedStart": start,
               "plannedEnd": start + timedelta(hours=max(hours, 1)), "expectedImpactHours": hours,
               "affectsImportantCustomers": vip,
               "approvals": [{"authority": a, "reference": f"REF-{a}-{work_id}"} for a in approvals],
               "notices": [{"channel": "voicePrompt", "sentAt": s} for s in notices],
               "affectedAccountIds": list(accounts)}
    if outage:
        payload["actualOutageStart"], payload["actualOutageEnd"] = outage
    return ev("billing.cutover.v1", payload, when)


def dunning_decision(decision: dict) -> tuple[str, bytes]:
    """A decision of the real dunning domain, as the relay publishes it on dunning.decisions.v1."""
    return "dunning.decisions.v1", orjson.dumps(decision)
