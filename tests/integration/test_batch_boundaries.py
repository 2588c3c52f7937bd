"""What a batch decides does not depend on which inputs share it (A.REPLAY): copies of an input
decide in one batch what they decide in batches of their own, on a real Postgres. A copy repeats an
input only once that input is recorded: a copy of one that was refused is decided again."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.billing_guard.worker import DEFINITION

from .guard_inputs import cdr, tariff, uid
from .runtime_harness import RuntimeHarness
from .test_batch_pipeline import decisions

pytestmark = pytest.mark.integration

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)


async def refusals(pool) -> list[tuple]:
    async with pool.acquire() as conn:
        return [tuple(r) for r in await conn.fetch(
            "SELECT code, count(*) FROM dead_lettered_inputs GROUP BY code ORDER BY code")]


async def clock(pool):
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT watermark FROM business_clocks WHERE service = 'billing_guard'")


async def test_A_REPLAY_copies_of_an_input_decide_the_same_in_one_batch_as_in_batches_of_their_own(
        kafka_bootstrap, database_url, other_database_url):
    account, switch, refused_id, rated_id = uid("A"), uid("SW"), uuid.uuid4(), uuid.uuid4()
    tariffs = tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    refused = cdr(account, switch, 1, T0 + timedelta(days=2), received=T0, event_id=refused_id)  # CP3.SANITY
    rated = cdr(account, switch, 3, T0 + timedelta(minutes=1), event_id=rated_id)
    inputs = [
        refused, refused,  # refused, so never recorded: the copy is decided (and refused) again
        cdr(account, switch, 2, T0, event_id=refused_id),  # the refused one's id, other content: decided
        rated, rated,  # recorded: the copy is a redelivery
        # a recorded id, other content, and the latest time: refused, it does not move the business clock
        cdr(account, switch, 4, T0 + timedelta(minutes=9), event_id=rated_id),
    ]
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as together, \
            RuntimeHarness(kafka_bootstrap, other_database_url, DEFINITION) as apart:
        for harness in (together, apart):
            await harness.feed(tariffs)
        # the processor alone: its dead letters stay in the store, off the session's shared broker
        assert await together.processor.process([together.message(*i) for i in inputs]) == []
        for i in inputs:
            assert await apart.processor.process([apart.message(*i)]) == []
        assert await refusals(together.pool) == await refusals(apart.pool) == [
            ("CP3.SANITY", 2), ("duplicate_event_id", 1)]
        assert await decisions(together.pool) == await decisions(apart.pool)
        assert await clock(together.pool) == await clock(apart.pool) == T0 + timedelta(minutes=3)  # `rated` arrived
        kinds = [d["decisionType"] for d in await together.stream(f"guard-account-{account}")]
        assert kinds == ["guard.CdrRated", "guard.CdrRated"]
