"""Poison inputs on the real runtime (dunning's BatchProcessor, real Postgres and broker):

- an input whose decide raises, or whose stream's evolve raises on a stored decision, becomes a
  processing_error dead letter naming the exception's class and no value of the input, and the
  rest of its batch is decided (CONTRACT.NOTHING_LOST); nothing crashes or loops;
- later order-sensitive inputs of that stream are held with a StreamBlocked decision and a
  stream_blocked dead letter until the poisoned input is decided, i.e. replayed after the fix;
  the replayed ones are then decided once, in order (CONTRACT.POISON_HOLD).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from services.common.eventstore.verify import verify_chain
from services.common.ids import derived_id
from services.common.runtime.worker import ServiceDefinition
from services.dunning.worker import DEFINITION

from .runtime_harness import RuntimeHarness
from .test_dunning_through_store import bill_event, payment_event

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
DUE = NOW + timedelta(days=10)
SECRET_PAYMENT = "P-13800001234"  # stands for personal data that must not reach a dead letter


class LedgerExploded(Exception):
    pass


class Defective:
    """Dunning's decider with a defect: decide raises on SECRET_PAYMENT while `broken`, and evolve
    raises on any decision caused by an input in `bad_causes`. The exception texts quote the input,
    as a careless one would."""

    def __init__(self, decider):
        self._decider = decider
        self.broken = True
        self.bad_causes: set[str] = set()

    def __getattr__(self, name):
        return getattr(self._decider, name)

    def decide(self, state, event, policy):
        if self.broken and event.payload.get("paymentId") == SECRET_PAYMENT:
            raise LedgerExploded(f"{event.payload['accountId']} paid {event.payload['amount']} as {SECRET_PAYMENT}")
        return self._decider.decide(state, event, policy)

    def evolve(self, state, decision: dict):
        if set(decision["causedBy"]) & self.bad_causes:
            raise LedgerExploded(f"cannot fold {decision['payload']}")
        return self._decider.evolve(state, decision)


@pytest.fixture
async def dunning(kafka_bootstrap, database_url):
    defective = Defective(DEFINITION.decider)
    async with RuntimeHarness(kafka_bootstrap, database_url,
                              ServiceDefinition(decider=defective, load_policy=DEFINITION.load_policy)) as h:
        h.defective = defective
        yield h


def account() -> str:
    return f"ACC-{uuid.uuid4().hex[:8]}"


def event_id(value: bytes) -> str:
    return orjson.loads(value)["eventId"]


async def rows(harness, sql: str, *args):
    async with harness.pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def causes(harness, account_id: str) -> list[str]:
    """The input ids behind the account stream's decisions, in the order they were stored."""
    return [d["causedBy"][0] for d in await harness.stream(f"dunning-account-{account_id}")]


async def letters(harness) -> list:
    return await rows(harness, 'SELECT "offset", code, message FROM dead_lettered_inputs ORDER BY "offset"')


def assert_names_no_value(message: str, *values: str) -> None:
    assert "LedgerExploded" in message
    for value in values:
        assert value not in message


async def test_NOTHING_LOST_a_decide_that_raises_dead_letters_that_input_and_decides_the_rest(dunning):
    a, b = account(), account()
    values = [bill_event(a, "B1", DUE), bill_event(b, "B1", DUE),
              payment_event(a, SECRET_PAYMENT, NOW, 777, "B1"), payment_event(b, "P1", NOW, 5_000, "B1")]
    batch = [dunning.message(topic, v) for topic, v in zip(
        ("billing.bill.v1", "billing.bill.v1", "billing.payment.v1", "billing.payment.v1"), values)]
    await dunning.process(batch)
    [letter] = await letters(dunning)
    assert (letter["offset"], letter["code"]) == (batch[2].offset, "processing_error")
    assert_names_no_value(letter["message"], a, SECRET_PAYMENT, "777")
    assert await causes(dunning, a) == [event_id(values[0])]
    assert set(await causes(dunning, b)) == {event_id(values[1]), event_id(values[3])}
    processed = await rows(dunning, 'SELECT "offset" FROM processed_inputs ORDER BY "offset"')
    assert [r["offset"] for r in processed] == [batch[0].offset, batch[1].offset, batch[3].offset]


async def test_NOTHING_LOST_an_evolve_that_raises_on_a_stored_decision_is_isolated(dunning):
    a, b = account(), account()
    first_bill = bill_event(a, "B1", DUE)
    await dunning.feed(("billing.bill.v1", first_bill))
    dunning.defective.bad_causes.add(event_id(first_bill))  # a release whose evolve cannot read it
    dunning.processor.cache.clear()  # as after a restart: the account is folded from the store
    values = [bill_event(b, "B1", DUE), bill_event(a, "B2", DUE + timedelta(days=30)),
              payment_event(b, "P1", NOW, 5_000, "B1")]
    batch = [dunning.message(t, v) for t, v in zip(("billing.bill.v1", "billing.bill.v1", "billing.payment.v1"),
                                                   values)]
    await dunning.process(batch)
    [letter] = await letters(dunning)
    assert (letter["offset"], letter["code"]) == (batch[1].offset, "processing_error")
    assert_names_no_value(letter["message"], a, "amountDue")
    assert "while deciding or storing" in letter["message"]
    assert set(await causes(dunning, b)) == {event_id(values[0]), event_id(values[2])}
    assert await causes(dunning, a) == [event_id(first_bill)]
    [hold] = await rows(dunning, "SELECT stream_id, poison_event_id FROM held_streams")
    assert (hold["stream_id"], hold["poison_event_id"]) == (f"dunning-account-{a}", event_id(values[1]))


async def test_CONTRACT_POISON_HOLD_later_inputs_of_the_stream_are_held_until_the_poison_is_replayed(dunning):
    a, b = account(), account()
    bill_a, poison = bill_event(a, "B1", DUE), payment_event(a, SECRET_PAYMENT, NOW, 1_000, "B1")
    later_a, bill_b = payment_event(a, "P2", NOW + timedelta(minutes=1), 4_000, "B1"), bill_event(b, "B1", DUE)
    first = [dunning.message("billing.bill.v1", bill_a), dunning.message("billing.payment.v1", poison),
             dunning.message("billing.payment.v1", later_a), dunning.message("billing.bill.v1", bill_b)]
    await dunning.process(first)
    # Held across batches too: the hold is stored, not kept in memory.
    last_a = payment_event(a, "P3", NOW + timedelta(minutes=2), 10, "B1")
    await dunning.process([dunning.message("billing.payment.v1", last_a)])

    held = await letters(dunning)
    assert [r["code"] for r in held] == ["processing_error", "stream_blocked", "stream_blocked"]
    assert f"billing.payment.v1[0]@{first[1].offset}" in held[1]["message"] and a not in held[1]["message"]
    assert await causes(dunning, a) == [event_id(bill_a)]  # nothing decided past the poison
    assert await causes(dunning, b) == [event_id(bill_b)]  # other streams go on
    blocked = await dunning.stream(f"held:dunning-account-{a}")
    assert [(d["decisionType"], d["outcome"], d["ruleIds"], d["causedBy"]) for d in blocked] == [
        ("dunning.StreamBlocked", "blocked", ["CONTRACT.POISON_HOLD"], [event_id(later_a)]),
        ("dunning.StreamBlocked", "blocked", ["CONTRACT.POISON_HOLD"], [event_id(last_a)])]
    # A pure function of the input: id derived from it, time taken from it (A.REPLAY).
    assert blocked[0]["decisionId"] == derived_id(event_id(later_a), "dunning.StreamBlocked", 0)
    assert blocked[0]["payload"] == {"heldStream": f"dunning-account-{a}", "poisonedBy": event_id(poison)}

    # The fix is deployed and the dead letters replayed in their order (wuguan dlq replay): the
    # poison first releases the stream, then the held inputs are decided, each once.
    dunning.defective.broken = False
    replay = [dunning.message("billing.payment.v1", v) for v in (poison, later_a, last_a)]
    await dunning.process(replay)
    await dunning.process(replay)  # delivered twice: nothing changes
    decided = await causes(dunning, a)
    assert decided[0] == event_id(bill_a)
    assert list(dict.fromkeys(decided[1:])) == [event_id(poison), event_id(later_a), event_id(last_a)]
    assert not await rows(dunning, "SELECT 1 FROM held_streams")
    assert len(await dunning.stream(f"held:dunning-account-{a}")) == 2
    assert len(await letters(dunning)) == 3
    async with dunning.pool.acquire() as conn:
        assert (await verify_chain(conn)).ok
