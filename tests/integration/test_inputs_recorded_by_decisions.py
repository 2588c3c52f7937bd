"""An input that decides something is recorded by its first decision, not by a row of its own
(migration 0009; issue 13, proposal 13), through the real broker and Postgres: its redelivery and
its resend change nothing (A.REPLAY), a reused eventId with other content is still a dead letter
(CONTRACT.DLQ), an input that decides nothing keeps its row, and two workers deciding one input
at once store it once."""
from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.validation import content_hash
from services.billing_guard.worker import DEFINITION
from services.common.decisions import input_decision_id
from services.common.runtime.batch_processor import BatchProcessor

from ..kafka_helpers import read_topic
from .guard_inputs import cdr, dunning_decision, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(hours=6)
CDRS = "billing.cdr.v1"


@pytest.fixture
async def guard(kafka_bootstrap, database_url):
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as h:
        await h.feed(tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2)))
        yield h


def input_id(value: bytes) -> str:
    body = orjson.loads(value)
    return body.get("eventId") or body["decisionId"]  # an input event, or another service's decision


async def rows_of(guard, event_id: str) -> tuple[list, list, list]:
    """(its first decisions, its rows of its own, what the processed_inputs view says of it)."""
    async with guard.pool.acquire() as conn:
        first = await conn.fetch("SELECT event_type, causation_id, input_hash, input_offset, chain_id FROM events"
                                 " WHERE event_id = $1::uuid", input_decision_id("billing_guard", event_id))
        own = await conn.fetch("SELECT * FROM processed_input_rows WHERE event_id = $1", event_id)
        view = await conn.fetch('SELECT consumer, content_hash, topic, partition, "offset" FROM processed_inputs'
                                " WHERE event_id = $1", event_id)
    return first, own, view


async def test_A_REPLAY_a_decided_input_is_recorded_by_its_first_decision_and_a_resend_changes_nothing(guard):
    account, switch = uid("A"), uid("SW")
    topic, value = cdr(account, switch, 1, T0)
    sent = guard.message(topic, value, partition=2)
    await guard.process([sent])
    first, own, view = await rows_of(guard, input_id(value))
    digest = content_hash(orjson.loads(value))
    assert [tuple(r) for r in first] == [("guard.CdrRated", input_id(value), digest, sent.offset,
                                         f"billing_guard/{CDRS}/2")]
    assert own == []  # no row of its own
    assert [tuple(r) for r in view] == [("billing_guard", digest, CDRS, 2, sent.offset)]

    before = await guard.stream(f"guard-account-{account}")
    guard.processor.cache.clear()  # a restarted worker: only the store remembers
    await guard.process([sent])  # redelivered at the same offset
    await guard.process([guard.message(topic, value, partition=1)])  # resent by upstream: a new offset
    assert await guard.stream(f"guard-account-{account}") == before and len(before) == 1


async def test_CONTRACT_DLQ_a_reused_event_id_with_other_content_is_dead_lettered_not_decided(guard):
    account, switch = uid("A"), uid("SW")
    topic, value = cdr(account, switch, 1, T0)
    await guard.process([guard.message(topic, value)])
    _, forged = cdr(account, switch, 1, T0, seconds=180, event_id=input_id(value))
    sent = guard.message(topic, forged)
    await guard.process([sent])
    letters = [orjson.loads(r.value) for r in await read_topic(guard.bootstrap, f"{CDRS}.dlq")]
    mine = [letter for letter in letters if letter["offset"] == sent.offset and letter["key"] == account]
    assert [letter["error"]["code"] for letter in mine] == ["duplicate_event_id"]
    assert len(await guard.stream(f"guard-account-{account}")) == 1


def decided_as_nothing(account: str) -> tuple[str, bytes]:
    """A dunning decision the guard reads (no type header) but does not act on."""
    return dunning_decision({
        "decisionId": str(uuid.uuid4()), "decisionType": "dunning.ReminderScheduled", "ruleIds": ["DN.CADENCE"],
        "outcome": "scheduled", "reasonCodes": [], "causedBy": [str(uuid.uuid4())], "policyVersion": "dunning-test",
        "service": "dunning", "serviceVersion": "test", "businessTime": T0.isoformat(),
        "streamId": f"dunning-account-{account}", "correlationId": None, "payload": {"accountId": account}})


async def test_A_REPLAY_an_input_that_decides_nothing_keeps_a_row_of_its_own(guard):
    account = uid("A")
    topic, value = decided_as_nothing(account)
    sent = guard.message(topic, value, key=account.encode())
    await guard.process([sent])
    first, own, view = await rows_of(guard, input_id(value))
    assert first == [] and len(own) == 1
    assert [tuple(r) for r in view] == [("billing_guard", content_hash(orjson.loads(value)), topic, 0, sent.offset)]
    await guard.process([sent])
    assert len((await rows_of(guard, input_id(value)))[1]) == 1


async def test_A_REPLAY_two_workers_deciding_one_input_at_once_store_it_once(guard):
    """A resend of one CDR on another partition reaches two workers at the same time: the unique
    index on decision ids lets one decision in; the other worker's batch retries, finds it, and
    changes nothing."""
    account, switch = uid("A"), uid("SW")
    topic, value = cdr(account, switch, 1, T0)
    other = BatchProcessor(decider=guard.processor.decider, policy=guard.processor.policy, pool=guard.pool,
                           dead_letters=guard.processor.dead_letters, service_version="test")
    await asyncio.gather(guard.process([guard.message(topic, value, partition=0)]),
                         guard.process([guard.message(topic, value, partition=1)], processor=other))
    decided = await guard.stream(f"guard-account-{account}")
    assert [d["decisionType"] for d in decided] == ["guard.CdrRated"]
    first, own, _ = await rows_of(guard, input_id(value))
    assert len(first) == 1 and own == []


async def test_A_REPLAY_two_workers_recording_one_input_that_decides_nothing_record_it_once(guard):
    """Its row's primary key refuses the second worker, whose batch retries, finds the row and
    changes nothing: the input is neither recorded twice nor dead-lettered."""
    account = uid("A")
    topic, value = decided_as_nothing(account)
    other = BatchProcessor(decider=guard.processor.decider, policy=guard.processor.policy, pool=guard.pool,
                           dead_letters=guard.processor.dead_letters, service_version="test")
    sent = []
    for _ in range(3):  # the race is one of timing: run it a few times
        topic, value = decided_as_nothing(account)
        first, second = (guard.message(topic, value, key=account.encode(), partition=p) for p in (0, 1))
        await asyncio.gather(guard.process([first]), guard.process([second], processor=other))
        assert len((await rows_of(guard, input_id(value)))[1]) == 1
        sent += [first.offset, second.offset]
    async with guard.pool.acquire() as conn:
        assert not await conn.fetchval('SELECT count(*) FROM dead_lettered_inputs WHERE consumer = $1 AND topic = $2'
                                       ' AND "offset" = ANY($3::bigint[])', "billing_guard", topic, sent)
