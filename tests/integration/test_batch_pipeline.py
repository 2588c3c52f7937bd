"""Batches decided while the batch before them is written (runtime/batch_pipeline.py; issue 13,
step 2), on a real Postgres: they decide exactly what batches decided one at a time decide
(A.REPLAY), whatever the other batch held (a claim it made, an input it recorded, a view of a
stream it appends to); and when the batch before fails to commit as decided, the one decided on it
is decided again (CONTRACT.NOTHING_LOST)."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest

from services.billing_guard.worker import DEFINITION
from services.common.db import connect
from services.common.eventstore import store
from services.common.runtime import metrics
from services.common.runtime.batch_pipeline import BatchPipeline
from services.common.runtime.batch_processor import BatchProcessor

from .guard_inputs import cdr, ev, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(hours=6)
CDRS = "billing.cdr.v1"


def dispute(account: str, ticket: str, usage_ids: list[str], when: datetime):
    return ev("billing.dispute.v1", {
        "ticketId": ticket, "ticketType": "Bill Dispute", "action": "open", "accountId": account,
        "billId": "B-9", "disputedItems": usage_ids, "disputedAmount": {"amountMinor": 10, "currency": "CNY"},
        "reason": "not mine", "channel": "hotline", "actorId": "agent-7"}, when)


def counted(outcome: str) -> float:
    return metrics.BATCHES_DECIDED_AHEAD.labels("billing_guard", outcome)._value.get()


async def decisions(pool) -> list[tuple]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, stream_id, stream_version, event_type, payload FROM events"
                                " ORDER BY stream_id, stream_version")
    return [tuple(r) for r in rows]


async def refusals(pool) -> list[tuple]:
    async with pool.acquire() as conn:
        return [tuple(r) for r in await conn.fetch("SELECT code, count(*) FROM dead_lettered_inputs GROUP BY code")]


async def test_A_REPLAY_batches_decided_while_the_one_before_is_written_decide_what_batches_one_at_a_time_do(
        kafka_bootstrap, database_url, other_database_url):
    a, b, switch = uid("A"), uid("SW"), uid("SW")
    tariffs = tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    first = cdr(a, switch, 1, T0, origin="O-1", usage_id="U-1")
    refused = cdr(a, uid("SW"), 1, T0 + timedelta(days=2), received=T0)  # starts in the future: CP3.SANITY
    batches = [
        [first, cdr(b, switch, 2, T0 + timedelta(minutes=1), usage_id="U-B"), refused],
        # decided on the batch before, which is still being written: the same call under another
        # id (suppressed by the claim that batch makes), the first CDR resent as it was (an input
        # that batch records, so skipped), and the refused one resent (not recorded: refused again)
        [cdr(a, switch, 1, T0, origin="O-1", usage_id="U-COPY"), first, refused,
         cdr(a, switch, 3, T0 + timedelta(minutes=2))],
        [cdr(b, switch, 4, T0 + timedelta(minutes=3))],
        # a view of a stream the batch before appends to: decided once that batch is stored
        [dispute(b, "K-1", ["U-B"], T0 + timedelta(hours=1)), cdr(a, switch, 5, T0 + timedelta(minutes=4))],
        [cdr(b, switch, 6, T0 + timedelta(minutes=5)), cdr(a, switch, 7, T0 + timedelta(minutes=6))],
    ]
    kept, redone, undecided = counted("kept"), counted("redone"), counted("undecided")
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as piped, \
            RuntimeHarness(kafka_bootstrap, other_database_url, DEFINITION) as serial:
        for harness in (piped, serial):
            await harness.feed(tariffs)
        pipeline = BatchPipeline(piped.processor)
        for inputs in batches:  # each submitted as soon as the one before is decided, as the worker does
            await pipeline.submit([piped.message(*i) for i in inputs], 0)
        await pipeline.flush()
        for inputs in batches:
            # the processor alone: its dead letters stay in the store, off the session's shared broker
            assert await serial.processor.process([serial.message(*i) for i in inputs]) == []
        assert counted("kept") - kept == 3  # the first had none before it
        # the dispute's batch needs a view of what the batch before appends: decided once that is stored,
        # which is no write failing
        assert (counted("undecided") - undecided, counted("redone") - redone) == (1, 0)
        assert await decisions(piped.pool) == await decisions(serial.pool)
        assert await refusals(piped.pool) == await refusals(serial.pool) == [("CP3.SANITY", 2)]
        kinds = [d["decisionType"] for d in await piped.stream(f"guard-account-{a}")]
        assert kinds == ["guard.CdrRated", "guard.DuplicateCdrSuppressed"] + ["guard.CdrRated"] * 3  # U-1 once
        assert "guard.DisputeOpened" in [d["decisionType"] for d in await piped.stream(f"guard-account-{b}")]


async def test_CONTRACT_NOTHING_LOST_a_batch_decided_on_one_that_then_conflicts_is_decided_again(
        kafka_bootstrap, database_url, other_database_url):
    """Batch N waits for its chain's head (held by another transaction) while another worker
    appends to N's account; N+1 is decided meanwhile on the states N leaves. N then meets the
    conflict and is stored the serial way, on the other worker's decision, so N+1's decisions
    were made on states that never were: they are thrown away and N+1 is decided again."""
    account, switch = uid("A"), uid("SW")
    tariffs = tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    warm, elsewhere = cdr(account, switch, 1, T0), cdr(account, uid("SW"), 1, T0 + timedelta(minutes=1))
    n, n1 = cdr(account, switch, 2, T0 + timedelta(minutes=2)), cdr(account, switch, 3, T0 + timedelta(minutes=3))
    kept, redone, undecided = counted("kept"), counted("redone"), counted("undecided")
    conflicts = metrics.CONCURRENCY_CONFLICTS.labels("billing_guard")._value.get()
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as piped, \
            RuntimeHarness(kafka_bootstrap, other_database_url, DEFINITION) as serial:
        await piped.feed(tariffs, warm)  # the chain of partition 0 exists, and its head can be held
        other = BatchProcessor(decider=piped.processor.decider, policy=piped.processor.policy, pool=piped.pool,
                               dead_letters=piped.processor.dead_letters, service_version="test")
        pipeline = BatchPipeline(piped.processor)
        holder = await connect(database_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM event_chains WHERE chain_id = $1 FOR UPDATE",
                                     store.chain_name("billing_guard", CDRS, 0))
                await pipeline.submit([piped.message(*n)], 0)
                await asyncio.sleep(0.3)  # N is decided and its write waits for the head
                await other.process([piped.message(*elsewhere, partition=1)])  # moves N's account on
                submitting = asyncio.ensure_future(pipeline.submit([piped.message(*n1)], 0))
                await asyncio.sleep(0.3)  # N+1 is decided on N's states
                assert not submitting.done()
        finally:
            await holder.close()
        await submitting
        await pipeline.flush()
        assert (counted("kept") - kept, counted("redone") - redone, counted("undecided") - undecided) == (0, 1, 0)
        assert metrics.CONCURRENCY_CONFLICTS.labels("billing_guard")._value.get() > conflicts

        for batch in ([tariffs, warm], [elsewhere], [n], [n1]):  # the order the store saw them in
            await serial.feed(*batch)
        stream = f"guard-account-{account}"
        assert await piped.stream(stream) == await serial.stream(stream)
        assert [d["decisionType"] for d in await piped.stream(stream)] == ["guard.CdrRated"] * 4
