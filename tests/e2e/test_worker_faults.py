"""Connections and restarts (issue 19, CONTRACT.NOTHING_LOST), on worker processes, a real broker
and a real Postgres: the broker restarting, Postgres down for 30 s, the workers' connection slots
exhausted. Each time the worker waits and retries, reports itself unhealthy while the fault
lasts, commits no offset it has not stored, and recovers by itself in the same process; every
payment is decided exactly once by both services that read it.
"""
from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.common.db import connect
from services.common.localstack.embedded import create_database, start_postgres
from services.common.localstack.topics import create_topics

from ..integration.guard_inputs import uid
from .conftest import PARTITIONS, workers_on
from .faults import (
    PAYMENT_READERS, all_decided_once, assert_held_while_refused, assert_never_restarted, committed_offsets,
    dead_letter_count, eventually, payments, produce, start_healthy, wait_healthy_again,
)

pytestmark = pytest.mark.e2e

POSTGRES_DOWN_S = 30


async def decided_before_the_fault(workers, database_url: str, n: int = 10) -> tuple[list, dict]:
    """n payments decided by both services, and the offsets the workers committed for them."""
    sent = payments(n)
    await produce(workers.bootstrap, sent)
    await eventually(lambda: all_decided_once(database_url, n), 60, "the payments sent before the fault")

    # Offsets follow durability within the consumer's commit interval (batch_consumer.py).
    async def committed_all():
        return all([sum((await committed_offsets(workers.bootstrap, s)).values()) == n for s in PAYMENT_READERS])
    await eventually(committed_all, 30, "the offsets of the payments decided before the fault")
    return sent, {s: await committed_offsets(workers.bootstrap, s) for s in PAYMENT_READERS}


async def recovered(workers, database_url: str, total: int, pids: dict) -> None:
    await eventually(lambda: all_decided_once(database_url, total), 90, f"all {total} payments decided once")
    assert await dead_letter_count(database_url) == 0
    await wait_healthy_again(workers, PAYMENT_READERS)
    for service, pid in pids.items():
        assert_never_restarted(workers, service, pid)


async def test_NOTHING_LOST_the_broker_restarting_mid_stream(e2e_broker, workers, database_url):
    """The embedded broker keeps nothing on disk: after its restart, topics, data and committed
    offsets are gone. What this can honestly show: payments decided before the restart stay
    decided once, the workers report the broker unreachable while it is down, reconnect without a
    restart, and decide what is published once the topics exist again (re-created, as a
    deployment's topic setup would); the payments sent before, published again, are skipped."""
    pids = await start_healthy(workers)
    before, _ = await decided_before_the_fault(workers, database_url)
    e2e_broker.stop()

    async def both_unhealthy():
        return all([await asyncio.to_thread(workers.health, s) == 503 for s in PAYMENT_READERS])
    await eventually(both_unhealthy, 30, "the workers to report the broker unreachable")
    e2e_broker.start_again()
    await create_topics(e2e_broker.bootstrap, PARTITIONS)
    await produce(e2e_broker.bootstrap, before + payments(10))
    await recovered(workers, database_url, 20, pids)


@pytest.fixture
def own_postgres():
    """A Postgres of this test's own, since the test stops it."""
    if os.environ.get("DATABASE_URL"):
        pytest.fail("this test stops its own Postgres; unset DATABASE_URL")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def stop_postgres(server) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.server.pgdata, user=server.server.system_user)


async def test_NOTHING_LOST_postgres_down_for_30_s(e2e_bootstrap, own_postgres, tmp_path):
    await create_database(own_postgres.url(), "wuguan")
    database_url = own_postgres.url("wuguan")
    async with workers_on(e2e_bootstrap, database_url, tmp_path) as workers:
        pids = await start_healthy(workers)
        _, offsets = await decided_before_the_fault(workers, database_url)
        down_at = time.monotonic()
        await asyncio.to_thread(stop_postgres, own_postgres)
        await produce(workers.bootstrap, payments(20))
        await assert_held_while_refused(workers, PAYMENT_READERS, offsets, "Postgres down")
        await asyncio.sleep(max(0.0, POSTGRES_DOWN_S - (time.monotonic() - down_at)))
        await asyncio.to_thread(own_postgres.server.ensure_postgres_running)
        await recovered(workers, database_url, 30, pids)


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:@{parts.hostname or ''}"))


async def test_NOTHING_LOST_connection_slots_exhausted(workers, database_url):
    """The workers log in as a role of their own. Idle connections take every slot that role
    may have (CONNECTION LIMIT), and the workers' sessions end: they cannot connect (SQLSTATE
    53300) until the idle connections close."""
    login = uid("wuguan_login").lower().replace("-", "_")
    admin = await connect(database_url)
    await admin.execute(f"CREATE ROLE {login} LOGIN IN ROLE wuguan_service")
    # What a worker's start-up needs beyond the service role: migrate() checks its table.
    await admin.execute(f"GRANT CREATE ON SCHEMA public TO {login}; GRANT SELECT ON schema_migrations TO {login}")
    login_url = as_user(database_url, login)
    workers.database_url = login_url
    hogs: list[asyncpg.Connection] = []
    try:
        pids = await start_healthy(workers)
        _, offsets = await decided_before_the_fault(workers, database_url)
        hogs = [await asyncpg.connect(login_url) for _ in range(3)]
        await admin.execute(f"ALTER ROLE {login} CONNECTION LIMIT {len(hogs)}")
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1"
            " AND NOT pid = ANY($2::int[])", login, [h.get_server_pid() for h in hogs])
        assert ended >= 2  # each worker had its pool's connection at least
        await produce(workers.bootstrap, payments(20))
        await assert_held_while_refused(workers, PAYMENT_READERS, offsets, "no connection slot left")
        for hog in hogs:
            await hog.close()
        hogs = []
        await admin.execute(f"ALTER ROLE {login} CONNECTION LIMIT -1")
        await recovered(workers, database_url, 30, pids)
    finally:
        for hog in hogs:
            await hog.close()
        workers.stop_all()
        await admin.execute(f"DROP OWNED BY {login}; DROP ROLE {login}")
        await admin.close()
