"""A batch sealed ahead by its writer (runtime/sealed_write.py, migration 0014), on the guard's
runtime, real Postgres and broker: it stores exactly what the statement-by-statement write stores,
a writer's decisions keep in position the order it decided them in, and a former owner whose
chain was claimed meanwhile is refused, not appended (A.TAMPER_EVIDENT, issue 13)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from services.billing_guard.worker import DEFINITION
from services.common.eventstore.verify import verify_chain
from services.common.runtime.batch_processor import BatchProcessor
from services.common.runtime.dead_letters import DeadLetters

from .guard_inputs import cdr, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(hours=6)
# What is compared between two stores: everything but where and when a row was written (positions,
# the links that hash them, the transaction and the time).
COMPARED = ("SELECT event_id, stream_id, stream_version, event_type, business_time, causation_id, payload,"
            " chain_id, chain_seq, input_hash, input_offset, claim_key, claim_value FROM events ORDER BY event_id")


def sealed_writes() -> float:
    return REGISTRY.get_sample_value("wuguan_batch_writes_total", {"service": "billing_guard", "path": "sealed"}) or 0


def batches(accounts: list[str], switch: str, per_account: int) -> list[list[tuple[str, bytes]]]:
    """Batches of the accounts' CDRs, one each a batch, their switch's sequence across them with
    two numbers missing (gaps, each of which sets a timer: CP3.SEQUENCE_GAP); the first gap's
    decision is its chain's first, the second's is sealed ahead."""
    out, seq = [], 0
    for _ in range(per_account):
        batch = []
        for account in accounts:
            seq += 2 if seq in (6, 20) else 1
            batch.append(cdr(account, switch, seq, T0 + timedelta(minutes=seq)))
        out.append(batch)
    return out


async def rows(harness, sql: str):
    async with harness.pool.acquire() as conn:
        return [tuple(r) for r in await conn.fetch(sql)]


async def stored_outcome(harness) -> dict:
    return {
        "events": await rows(harness, COMPARED),
        "snapshots": await rows(harness, "SELECT stream_id, version, revision, state FROM stream_snapshots ORDER BY 1"),
        "timers": await rows(harness, "SELECT timer_id, stream_id, due_at, kind, data FROM pending_timers ORDER BY 1"),
        "clocks": await rows(harness, "SELECT chain_id, watermark FROM business_clock_partitions ORDER BY 1"),
        "heads": await rows(harness, "SELECT chain_id, seq, epoch FROM event_chains ORDER BY 1"),
    }


async def run(kafka_bootstrap, database_url, setup, inputs: list[list[tuple[str, bytes]]]) -> dict:
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as guard:
        await guard.feed(setup)
        for batch in inputs:
            await guard.process([guard.message(*event) for event in batch])
            await guard.relay()  # the switch's notes come back and are decided: its snapshot
        async with guard.pool.acquire() as conn:
            report = await verify_chain(conn, claims_made={"billing_guard": DEFINITION.decider.claims_made})
        assert report.ok, report.problems
        return await stored_outcome(guard)


async def test_a_batch_sealed_ahead_stores_what_the_statements_store(kafka_bootstrap, database_url,
                                                                      other_database_url, monkeypatch):
    setup = tariff("T-STD", 900, T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    inputs = batches([uid("A") for _ in range(5)], uid("SW"), 6)
    before = sealed_writes()
    sealed = await run(kafka_bootstrap, database_url, setup, inputs)
    assert sealed_writes() - before >= 5  # every batch after the partition's first
    written_sealed = sealed_writes()
    monkeypatch.setattr(BatchProcessor, "_write_sealed", lambda self, conn, batch: _never())
    statements = await run(kafka_bootstrap, other_database_url, setup, inputs)
    assert sealed_writes() == written_sealed
    assert sealed == statements
    assert len(sealed["events"]) >= 30 and sealed["snapshots"] and sealed["timers"] and sealed["clocks"]


async def _never() -> bool:
    return False


async def test_a_writer_s_positions_follow_the_order_it_decided_in(kafka_bootstrap, database_url):
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as guard:
        await guard.feed(tariff("T-STD", 900, T0 - timedelta(days=1), 10, T0 - timedelta(days=2)))
        account, switch = uid("A"), uid("SW")
        # the first batch of a partition is written statement by statement, the later ones sealed
        for n in range(1, 7):
            await guard.process([guard.message(*cdr(account, switch, n, T0 + timedelta(minutes=n)))])
        order = await rows(guard, "SELECT (payload->'payload'->>'sequenceNumber')::int FROM events"
                                  " WHERE event_type = 'guard.CdrRated' ORDER BY global_position")
    assert [n for (n,) in order] == [1, 2, 3, 4, 5, 6]


async def test_a_former_owner_whose_chain_was_claimed_is_refused_and_stores_nothing(kafka_bootstrap, database_url):
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as guard:
        await guard.feed(tariff("T-STD", 900, T0 - timedelta(days=1), 10, T0 - timedelta(days=2)))
        account, switch = uid("A"), uid("SW")
        former = guard.processor
        for n in (1, 2):  # the second is sealed ahead: the former owner knows the chain's head
            assert not await former.process([guard.message(*cdr(account, switch, n, T0 + timedelta(minutes=n)))], 1)
        successor = BatchProcessor(decider=DEFINITION.decider, policy=former.policy, pool=guard.pool,
                                   dead_letters=DeadLetters("billing_guard"), service_version="test")
        assert not await successor.process([guard.message(*cdr(account, switch, 3, T0 + timedelta(minutes=3)))], 2)
        late = [guard.message(*cdr(account, switch, 4, T0 + timedelta(minutes=4)))]
        before = sealed_writes()
        assert await former.process(late, 1) == late  # fenced out: its offset is not committed
        assert sealed_writes() == before
        usages = await rows(guard, "SELECT (payload->'payload'->>'sequenceNumber')::int FROM events"
                                   " WHERE event_type = 'guard.CdrRated' ORDER BY global_position")
        async with guard.pool.acquire() as conn:
            assert (await verify_chain(conn)).ok
    assert [n for (n,) in usages] == [1, 2, 3]
