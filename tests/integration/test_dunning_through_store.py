"""The consumer runtime on a real broker and a real Postgres: decisions stored once,
redeliveries skipped, bad input dead-lettered with the reason, timers through Kafka, relay
in commit order. (DN.OCCURRENCE, DN.FIRST_LETTER, DN.REPEAT_VOICE, A.*)"""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from schemas.encoding import encode_event
from services.common.eventstore.verify import verify_chain
from services.common.runtime.relay import Relay

from services.common.db import connect
from services.dunning.worker import DEFINITION

from ..kafka_helpers import read_topic
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Harness(RuntimeHarness):
    def __init__(self, bootstrap, database_url):
        super().__init__(bootstrap, database_url, DEFINITION)

    async def fire_due_timers(self) -> None:
        assert await super().fire_due_timers() >= 1

    async def decisions(self, account: str) -> list[dict]:
        return await self.stream(f"dunning-account-{account}")


def bill_event(account: str, bill_id: str, due: datetime, fen: int = 5_000, event_id: str | None = None) -> bytes:
    return encode_event(
        "billing.bill.v1",
        {
            "billId": bill_id, "billNo": bill_id, "accountId": account,
            "billingPeriod": {"startDateTime": due - timedelta(days=45), "endDateTime": due - timedelta(days=15)},
            "billDate": due - timedelta(days=14), "paymentDueDate": due,
            "amountDue": {"amountMinor": fen, "currency": "CNY"}, "state": "sent",
            "customer": {"creditLevel": "B", "customerTier": "standard", "important": False},
        },
        event_id=event_id or str(uuid.uuid4()), event_time=due - timedelta(days=14), source="test-bss",
    )


def payment_event(account: str, payment_id: str, when: datetime, fen: int, bill_id: str) -> bytes:
    return encode_event(
        "billing.payment.v1",
        {"paymentId": payment_id, "accountId": account, "billId": bill_id,
         "amount": {"amountMinor": fen, "currency": "CNY"}, "paymentDate": when, "status": "received",
         "channel": "counter"},
        event_id=str(uuid.uuid4()), event_time=when, source="test-bss",
    )


@pytest.fixture
async def harness(kafka_bootstrap, database_url):
    async with Harness(kafka_bootstrap, database_url) as h:
        yield h


async def test_DN_FIRST_LETTER_and_DN_REPEAT_VOICE_through_broker_and_store(harness):
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    first_due = NOW - timedelta(days=40)
    await harness.process([harness.message("billing.bill.v1", bill_event(account, "B1", first_due))])
    await harness.fire_due_timers()
    await harness.process(
        [harness.message("billing.payment.v1", payment_event(account, "P1", first_due + timedelta(days=5), 5_000, "B1"))]
    )
    await harness.process([harness.message("billing.bill.v1", bill_event(account, "B2", NOW - timedelta(days=1)))])
    await harness.fire_due_timers()

    decisions = await harness.decisions(account)
    reminders = [d for d in decisions if d["decisionType"] == "dunning.ReminderScheduled"]
    assert [r["payload"]["offenceCount"] for r in reminders] == [1, 2]
    assert reminders[0]["payload"]["channel"] == "letter" and not reminders[0]["payload"]["voiceAllowed"]
    assert "DN.FIRST_LETTER" in reminders[0]["ruleIds"]
    assert reminders[1]["payload"]["voiceAllowed"] and "DN.REPEAT_VOICE" in reminders[1]["ruleIds"]
    assert all(d["policyVersion"].startswith("dunning-") for d in decisions)
    async with harness.pool.acquire() as conn:
        assert (await verify_chain(conn)).ok


async def test_redelivered_and_republished_inputs_change_nothing(harness):
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    value = bill_event(account, "B1", NOW + timedelta(days=10))
    await harness.process([harness.message("billing.bill.v1", value)])
    before = await harness.decisions(account)
    # the same bytes again: once as a redelivery of the same offset, once republished
    await harness.process([harness.message("billing.bill.v1", value), harness.message("billing.bill.v1", value)])
    assert await harness.decisions(account) == before
    assert len(before) == 1


async def test_invalid_input_is_dead_lettered_with_the_reason_and_the_batch_goes_on(harness):
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    bad = harness.message("billing.bill.v1", b'{"eventId": 1', key=account.encode())
    good = harness.message("billing.bill.v1", bill_event(account, "B1", NOW + timedelta(days=10)))
    await harness.process([bad, good])
    assert len(await harness.decisions(account)) == 1
    letters = [orjson.loads(r.value) for r in await read_topic(harness.bootstrap, "billing.bill.v1.dlq")]
    mine = [letter for letter in letters if letter["key"] == account]
    assert len(mine) == 1
    assert mine[0]["error"]["code"] == "malformed_json"
    assert mine[0]["originalTopic"] == "billing.bill.v1" and mine[0]["offset"] == bad.offset
    assert mine[0]["value"] == '{"eventId": 1'


async def test_same_event_id_with_different_content_is_dead_lettered(harness):
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    event_id = str(uuid.uuid4())
    await harness.process(
        [harness.message("billing.bill.v1", bill_event(account, "B1", NOW + timedelta(days=10), event_id=event_id))]
    )
    forged = harness.message(
        "billing.bill.v1", bill_event(account, "B1", NOW + timedelta(days=10), fen=1, event_id=event_id),
        key=account.encode(),
    )
    await harness.process([forged])
    letters = [orjson.loads(r.value) for r in await read_topic(harness.bootstrap, "billing.bill.v1.dlq")]
    assert any(l["key"] == account and l["error"]["code"] == "duplicate_event_id" for l in letters)
    decisions = await harness.decisions(account)
    assert len(decisions) == 1 and decisions[0]["payload"]["amountDueMinor"] == 5_000


async def test_relay_publishes_decisions_in_global_order_keyed_by_stream(harness):
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    await harness.process(
        [harness.message("billing.bill.v1", bill_event(account, f"B{i}", NOW + timedelta(days=10 + i))) for i in range(5)]
    )
    relay = Relay(service="dunning", topic="dunning.decisions.v1", database_url=harness.database_url,
                  role="wuguan_service", producer=harness.producer, interval_s=0.1)
    conn = await connect(harness.database_url, role="wuguan_service")
    try:
        while await relay.publish_page(conn):
            pass
    finally:
        await conn.close()
    stored = [d["decisionId"] for d in await harness.decisions(account)]
    published = [
        r for r in await read_topic(harness.bootstrap, "dunning.decisions.v1") if r.key == f"dunning-account-{account}".encode()
    ]
    assert [orjson.loads(r.value)["decisionId"] for r in published] == stored
    positions = [int(dict(r.headers)["wuguan-global-position"]) for r in published]
    assert positions == sorted(positions)


async def test_a_redelivered_bad_input_is_dead_lettered_once_and_recorded(harness):
    marker = f"ACC-{uuid.uuid4().hex[:8]}"
    bad = harness.message("billing.payment.v1", b"[1, 2]", key=marker.encode())
    await harness.process([bad])
    await harness.process([bad])  # the same offset again, as after a rebalance
    letters = [orjson.loads(r.value) for r in await read_topic(harness.bootstrap, "billing.payment.v1.dlq")]
    assert [l["error"]["code"] for l in letters if l["key"] == marker] == ["not_an_object"]
    async with harness.pool.acquire() as conn:
        row = await conn.fetchrow(
            'SELECT code FROM dead_lettered_inputs WHERE topic = $1 AND "offset" = $2', "billing.payment.v1", bad.offset
        )
    assert row["code"] == "not_an_object"


async def test_timers_fire_on_the_business_clock_not_the_wall_clock(harness):
    """A replay of last quarter: the due date passed long ago by the wall clock, but a timer
    fires only once the inputs' business time has passed it."""
    harness.timers.clock = "business"
    account = f"ACC-{uuid.uuid4().hex[:8]}"
    due = datetime(2026, 7, 15, 23, 59, tzinfo=timezone.utc)
    await harness.process([harness.message("billing.bill.v1", bill_event(account, "B1", due))])
    assert await harness.timers.publish_due() == 0  # business time is still the bill date
    later = payment_event(f"{account}-other", "PX", due + timedelta(hours=1), 100, "BX")
    await harness.process([harness.message("billing.payment.v1", later)])
    assert await harness.timers.publish_due() == 1
    async with harness.pool.acquire() as conn:
        watermark = await conn.fetchval("SELECT watermark FROM business_clocks WHERE service = 'dunning'")
    assert watermark == due + timedelta(hours=1)


async def test_decisions_of_other_services_this_one_does_not_use_are_passed_over_undecoded(harness):
    wanted = harness.message("guard.decisions.v1", b"not even json", key=b"x")
    unwanted = harness.message("guard.decisions.v1", b"not even json", key=b"y")
    wanted = replace(wanted, headers=(("wuguan-decision-type", b"guard.DisputeOpened"),))
    unwanted = replace(unwanted, headers=(("wuguan-decision-type", b"guard.CdrRated"),))
    await harness.process([wanted, unwanted])
    async with harness.pool.acquire() as conn:
        refused = await conn.fetch(
            """SELECT "offset" FROM dead_lettered_inputs WHERE topic = 'guard.decisions.v1' ORDER BY 1""")
    # the one dunning uses was decoded (and refused); the CdrRated was never looked at
    assert [r["offset"] for r in refused] == [wanted.offset]
