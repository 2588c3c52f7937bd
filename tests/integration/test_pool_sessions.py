"""The worker's pool returns connections without asyncpg's reset query (db.create_pool,
session_state=False): that holds only if deciding and storing leave nothing in the session. After
batches through the processor on such a pool, no connection of it holds a session setting or an
advisory lock."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from services.billing_guard.worker import DEFINITION
from services.common.db import connect, create_pool

from .guard_inputs import cdr, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)
# What asyncpg's reset query would undo: a setting away from its value at connection (RESET ALL;
# asyncpg itself sets jit back to it after introspecting types) and an advisory lock. A transaction
# left open is rolled back by asyncpg whatever the pool's reset.
SESSION_STATE = (
    "SELECT (SELECT count(*) FROM pg_settings WHERE source = 'session' AND setting IS DISTINCT FROM reset_val)"
    " + (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())")


async def _session_state_of_each(pool, size: int) -> list[int]:
    conns = [await pool.acquire() for _ in range(size)]  # all at once: every connection of the pool
    try:
        return [await c.fetchval(SESSION_STATE) for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


async def test_the_probe_sees_a_session_setting_and_a_session_lock(database_url):
    conn = await connect(database_url)
    try:
        assert await conn.fetchval(SESSION_STATE) == 0
        await conn.execute("SET statement_timeout = 5000")
        await conn.execute("SELECT pg_advisory_lock(42)")
        assert await conn.fetchval(SESSION_STATE) == 2
    finally:
        await conn.close()


async def test_deciding_and_storing_leave_nothing_in_the_session(kafka_bootstrap, database_url):
    account, switch = uid("A"), uid("SW")
    tariffs = tariff("T-STD", random.randrange(10_000, 1_000_000), T0 - timedelta(days=1), 10, T0 - timedelta(days=2))
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as harness:
        # Every connection of the pool open from the start, so the probe below sees those the batches used.
        pool = harness.processor.pool = await create_pool(database_url, role="wuguan_service", min_size=3,
                                                          max_size=3, session_state=False)
        try:
            await harness.feed(tariffs)
            for n in range(6):
                await harness.feed(cdr(account, switch, n, T0 + timedelta(minutes=n)))
            assert len(await harness.stream(f"guard-account-{account}")) == 6
            assert await _session_state_of_each(pool, 3) == [0, 0, 0]
        finally:
            await pool.close()
