"""Two partitions of one service are stored concurrently (issue 13: no serialization point): while a
batch of partition 0 is written in a transaction that has not committed (a slow write), another
worker stores a batch of partition 1. Their chains, their business clocks (migration 0012) and
their streams are their own, so nothing the second write needs is locked by the first."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest

from services.billing_guard.worker import DEFINITION
from services.common.runtime.batch_processor import BatchProcessor

from .guard_inputs import cdr, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)


async def test_a_partition_is_stored_while_another_partitions_write_is_open(kafka_bootstrap, database_url):
    first, second = uid("A"), uid("A")
    tariffs = tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as harness:
        await harness.feed(tariffs, cdr(first, uid("SW"), 1, T0), cdr(second, uid("SW"), 1, T0))
        slow = harness.processor
        other = BatchProcessor(decider=slow.decider, policy=slow.policy, pool=harness.pool,
                               dead_letters=slow.dead_letters, service_version="test")  # a second worker
        batch = slow.accept([harness.message(*cdr(first, uid("SW"), 2, T0 + timedelta(minutes=1)), partition=0)], 0)
        await slow.decide(batch)
        conn = await harness.pool.acquire()
        transaction = conn.transaction()
        await transaction.start()
        try:
            await slow._write(conn, batch.decided)  # written, not committed
            later = T0 + timedelta(minutes=2)
            stored = other.process([harness.message(*cdr(second, uid("SW"), 2, later), partition=1)])
            assert await asyncio.wait_for(stored, 10) == []
        finally:
            await transaction.commit()
            await harness.pool.release(conn)
        for account in (first, second):
            assert [d["decisionType"] for d in await harness.stream(f"guard-account-{account}")] == [
                "guard.CdrRated", "guard.CdrRated"]
        async with harness.pool.acquire() as c:
            clock = await c.fetchval("SELECT watermark FROM business_clocks WHERE service = 'billing_guard'")
        assert clock >= later + timedelta(minutes=2)  # the latest input's time (a CDR arrives 2 min after its start)
