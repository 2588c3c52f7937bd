"""The platform end to end: three worker processes, the real broker, the real Postgres.

Decisions stored and published on dunning.decisions.v1 must equal what the pure domain
decides for the same inputs, however often inputs are republished and however the worker
is killed in the middle (A.REPLAY, DN.OCCURRENCE, DN.FIRST_LETTER, DN.REPEAT_VOICE).
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.encoding import encode_event
from services.common.db import connect
from services.common.eventstore.verify import verify_chain
from services.common.localstack.publish import publish
from services.common.runtime.worker import SERVICE_VERSION
from services.composition import SERVICES
from services.dunning.worker import load
from services.common.config import Settings
from schemas.decision import validate_decision
from schemas.validation import decode_event

from ..kafka_helpers import read_topic
from .faults import eventually
from harness.dunning import Account

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


def bill_message(account: str, bill_id: str, due: datetime, fen: int, level: str = "B", tier: str = "standard"):
    payload = {
        "billId": bill_id, "billNo": bill_id, "accountId": account,
        "billingPeriod": {"startDateTime": due - timedelta(days=45), "endDateTime": due - timedelta(days=15)},
        "billDate": due - timedelta(days=14), "paymentDueDate": due,
        "amountDue": {"amountMinor": fen, "currency": "CNY"}, "state": "sent",
        "customer": {"creditLevel": level, "customerTier": tier, "important": False},
    }
    value = encode_event("billing.bill.v1", payload, event_id=str(uuid.uuid4()), event_time=due - timedelta(days=14), source="e2e-bss")
    return ("billing.bill.v1", account.encode(), value)


def unpaid_bills(n: int, run: str) -> list:
    """Single-bill accounts due two days ago at about noon: each yields tracked -> opened ->
    reminder scheduled (and, with one grace day, delivered). Noon keeps every timer hours
    away from the moment the expectation is computed, so it cannot flip while the test runs."""
    due = datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=2)
    levels, tiers = "ABCDE", ("diamond", "gold", "silver", "standard")
    return [
        bill_message(f"ACC-{run}-{i:04d}", f"BILL-{run}-{i:04d}", due - timedelta(seconds=i), 1_000 + i, levels[i % 5], tiers[i % 4])
        for i in range(n)
    ]


def expected_decisions(messages) -> dict[str, dict]:
    """What the pure domain decides for these inputs, with the worker's version stamps."""
    loaded = load(Settings())
    out = {}
    for topic, _, value in messages:
        account = Account(loaded)
        account.feed(decode_event(topic, value))
        account.fire_due_timers(datetime.now(SHANGHAI))
        for decision in account.log:
            decision["serviceVersion"] = SERVICE_VERSION
            out[decision["decisionId"]] = decision
    return out


async def stored_decisions(database_url: str) -> dict[str, dict]:
    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'dunning' ORDER BY global_position")
    finally:
        await conn.close()
    return {r["payload"]["decisionId"]: r["payload"] for r in rows}


def differences(stored: dict, expected: dict) -> list[str]:
    """Readable differences between two decision maps (ids, then fields of shared ids)."""
    out = [f"missing {k}" for k in expected.keys() - stored.keys()]
    out += [f"unexpected {k}" for k in stored.keys() - expected.keys()]
    for key in stored.keys() & expected.keys():
        a, b = stored[key], expected[key]
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                out.append(f"{a.get('decisionType')} {field}: stored {a.get(field)!r} expected {b.get(field)!r}")
    return out


async def test_three_workers_decide_store_and_publish_exactly_once(workers):
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)

    messages = unpaid_bills(40, "a")
    expected = expected_decisions(messages)
    assert len(expected) >= 120
    first_offence = [d for d in expected.values() if d["decisionType"] == "dunning.ReminderScheduled"]
    assert all(not d["payload"]["voiceAllowed"] for d in first_offence)

    garbage = [
        ("billing.bill.v1", b"ACC-x", b"{broken"),
        ("billing.payment.v1", b"ACC-y", orjson.dumps({"eventId": str(uuid.uuid4()), "eventType": "billing.payment.v1"})),
    ]
    await publish(workers.bootstrap, garbage[:1] + messages[:20] + garbage[1:] + messages[20:])

    async def all_stored():
        stored = await stored_decisions(workers.database_url)
        return stored if len(stored) >= len(expected) else None

    stored = await eventually(all_stored, 90, f"{len(expected)} dunning decisions")
    assert differences(stored, expected) == []

    # Republishing every input changes nothing.
    await publish(workers.bootstrap, messages)
    await asyncio.sleep(5)
    assert differences(await stored_decisions(workers.database_url), expected) == []

    # Every stored decision is published, in order, on the decision topic.
    async def all_published():
        records = await read_topic(workers.bootstrap, "dunning.decisions.v1")
        ids = {orjson.loads(r.value)["decisionId"] for r in records}
        return ids if ids >= set(expected) else None

    published = await eventually(all_published, 30, "decisions on dunning.decisions.v1")
    assert published == set(expected)
    for record in await read_topic(workers.bootstrap, "dunning.decisions.v1"):
        validate_decision(orjson.loads(record.value), "dunning.decisions.v1")

    # Bad input went to the dead-letter topics with the reason; the workers kept going.
    def dunnings(records):
        return [letter for letter in map(orjson.loads, (r.value for r in records)) if letter["consumer"] == "dunning"]

    bill_letters = dunnings(await read_topic(workers.bootstrap, "billing.bill.v1.dlq"))
    payment_letters = dunnings(await read_topic(workers.bootstrap, "billing.payment.v1.dlq"))
    assert [l["error"]["code"] for l in bill_letters] == ["malformed_json"]
    assert [l["error"]["code"] for l in payment_letters] == ["envelope_invalid"]
    assert "eventTime" in payment_letters[0]["error"]["message"]

    metrics = workers.metrics("dunning")
    assert 'wuguan_dead_letters_total{code="malformed_json",service="dunning",topic="billing.bill.v1"} 1.0' in metrics
    assert "wuguan_decisions_total" in metrics
    for service in SERVICES:
        assert workers.health(service) == 200

    conn = await connect(workers.database_url)
    try:
        assert (await verify_chain(conn)).ok
    finally:
        await conn.close()


async def test_kill_9_mid_stream_loses_and_duplicates_nothing(workers):
    workers.start("dunning")
    await workers.wait_healthy("dunning")
    messages = unpaid_bills(300, "k")
    expected = expected_decisions(messages)

    await publish(workers.bootstrap, messages[:150])

    async def some_stored():
        n = len(await stored_decisions(workers.database_url))
        return n if n > 30 else None

    await eventually(some_stored, 60, "the first decisions")
    workers.kill("dunning")  # SIGKILL: no clean shutdown, no offset commit
    await publish(workers.bootstrap, messages[150:])
    workers.start("dunning")
    await workers.wait_healthy("dunning")

    async def all_stored():
        stored = await stored_decisions(workers.database_url)
        return stored if len(stored) >= len(expected) else None

    await eventually(all_stored, 120, f"{len(expected)} decisions after the restart")
    await asyncio.sleep(2)  # anything duplicated would land now
    assert differences(await stored_decisions(workers.database_url), expected) == []
