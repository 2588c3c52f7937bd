"""A second guard worker joins mid-run, takes partitions, and is killed (-9) mid-batch: every CDR
is still decided exactly once (issue 13's rebalance case, issue 19's NOTHING_LOST).

Acknowledgement after commit is what this checks: a batch cut short by the rebalance or the
kill was never acknowledged, so its inputs come back to whichever worker owns the partition
next, and the inputs it had committed are recognised there and not decided again.
"""
from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta, timezone

import pytest

from services.common.db import connect
from services.common.localstack.embedded import free_port
from services.common.localstack.processes import spawn_worker
from services.common.localstack.publish import publish

from ..integration.guard_inputs import cdr, tariff, uid

pytestmark = pytest.mark.e2e

NOW = datetime.now(timezone.utc).replace(microsecond=0)
WAVES, PER_WAVE = 8, 400


async def assigned(log, timeout_s: float = 60) -> None:
    """Wait until the second worker has taken partitions: the rebalance has happened."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while "Setting newly assigned partitions" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert asyncio.get_running_loop().time() < deadline, "the second worker never took partitions"
        await asyncio.sleep(0.2)


async def test_a_worker_joining_then_killed_mid_run_loses_and_duplicates_no_decision(workers, database_url, tmp_path):
    workers.start("billing_guard")
    await workers.wait_healthy("billing_guard")
    t0 = NOW - timedelta(hours=8)
    topic, value = tariff("T-STD", 1, t0 - timedelta(days=1), 10, t0 - timedelta(days=2))
    await publish(workers.bootstrap, [(topic, b"T-STD", value)])
    accounts = [uid("A") for _ in range(60)]
    second = None
    for wave in range(WAVES):
        batch = []
        for n in range(PER_WAVE):
            account = accounts[(wave * PER_WAVE + n) % len(accounts)]
            topic, value = cdr(account, f"SW-{account}", wave * PER_WAVE + n + 1,
                               t0 + timedelta(seconds=wave * PER_WAVE + n))
            batch.append((topic, account.encode(), value))
        await publish(workers.bootstrap, batch)
        if wave == 1:  # joins: the group rebalances while the first worker is mid-stream
            env = {**workers.env(), "WUGUAN_BILLING_GUARD_PORT": str(free_port())}
            second = spawn_worker("billing_guard", env, tmp_path / "billing_guard-2.log")
        if wave == 4:
            await assigned(tmp_path / "billing_guard-2.log")
        if wave == 5:  # leaves the hard way, whatever batch it holds
            second.send_signal(signal.SIGKILL)
            second.wait()
        await asyncio.sleep(1.0)

    total = WAVES * PER_WAVE
    conn = await connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await conn.fetchval("SELECT count(*) FROM processed_inputs WHERE topic = 'billing.cdr.v1'") < total:
            assert asyncio.get_running_loop().time() < deadline, "not every CDR was decided"
            await asyncio.sleep(0.5)
        per_usage = await conn.fetch(
            "SELECT payload->'payload'->>'usageId' AS usage, count(*) AS n FROM events"
            " WHERE event_type IN ('guard.CdrRated', 'guard.CdrUnrated', 'guard.DuplicateCdrSuppressed')"
            " GROUP BY 1")
    finally:
        await conn.close()
    assert len(per_usage) == total and {r["n"] for r in per_usage} == {1}
