"""The event store on a real Postgres: append-only, optimistic concurrency, commit-ordered
positions, hash chain and `verify` (A.APPEND_ONLY, A.TAMPER_EVIDENT)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import asyncpg
import pytest

from services.common.db import connect, create_pool
from services.common.eventstore import store
from services.common.eventstore.migrate import migrate
from services.common.eventstore.records import NewEvent
from services.common.eventstore.verify import verify_chain

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def new(stream: str, n: int, **payload) -> NewEvent:
    return NewEvent(
        event_id=str(uuid.uuid4()), stream_id=stream, event_type="test.Happened", service="dunning",
        business_time=T0, payload={"n": n, **payload}, causation_id="input-1",
    )


@pytest.fixture
async def conn(database_url):
    c = await connect(database_url)
    await migrate(c)
    yield c
    await c.close()


async def append(conn, expected: int, events):
    async with conn.transaction():
        return await store.append(conn, [(expected, events)])


async def test_migrations_are_idempotent(conn):
    assert await migrate(conn) == []


async def test_append_and_read_a_stream_in_order(conn):
    await append(conn, 0, [new("s-1", 1), new("s-1", 2)])
    await append(conn, 2, [new("s-1", 3)])
    events = await store.read_stream(conn, "s-1")
    assert [e.payload["n"] for e in events] == [1, 2, 3]
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.global_position for e in events] == [1, 2, 3]


async def test_optimistic_concurrency_rejects_a_stale_writer(conn):
    await append(conn, 0, [new("s-1", 1)])
    with pytest.raises(store.ConcurrencyConflict):
        await append(conn, 0, [new("s-1", 2)])
    assert len(await store.read_stream(conn, "s-1")) == 1


async def test_positions_follow_commit_order_under_concurrent_writers(database_url, conn):
    pool = await create_pool(database_url, role="wuguan_service", max_size=8)

    async def writer(i: int):
        async with pool.acquire() as c, c.transaction():
            await store.append(c, [(0, [new(f"w-{i}", 1), new(f"w-{i}", 2)])])
            await asyncio.sleep(0.01)  # hold the transaction open while others queue

    await asyncio.gather(*(writer(i) for i in range(20)))
    await pool.close()
    rows = await conn.fetch("SELECT global_position, recorded_at FROM events ORDER BY global_position")
    assert [r["global_position"] for r in rows] == list(range(1, 41))
    report = await verify_chain(conn)
    assert report.ok, report.problems


async def test_service_role_cannot_update_or_delete_events(database_url, conn):
    await append(conn, 0, [new("s-1", 1)])
    service = await connect(database_url, role="wuguan_service")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute("UPDATE events SET payload = '{}'::jsonb")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute("DELETE FROM events")
        async with service.transaction():
            await store.append(service, [(1, [new("s-1", 2)])])  # appending is allowed
    finally:
        await service.close()


async def test_A_APPEND_ONLY_even_the_owner_is_stopped_by_the_trigger(conn):
    await append(conn, 0, [new("s-1", 1)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE events SET payload = '{}'::jsonb")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("DELETE FROM events")


async def _as_superuser_bypassing_triggers(conn, sql: str) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE events SET payload = jsonb_set(payload, '{n}', '99') WHERE global_position = 3",
        "UPDATE events SET business_time = business_time + interval '1 day' WHERE global_position = 2",
        "DELETE FROM events WHERE global_position = 3",
        "DELETE FROM events WHERE global_position = 5",
        "UPDATE events SET global_position = -2 WHERE global_position = 2;"
        "UPDATE events SET global_position = 2 WHERE global_position = 3;"
        "UPDATE events SET global_position = 3 WHERE global_position = -2",
        "UPDATE events SET stream_id = 's-other' WHERE global_position = 1",
    ],
)
async def test_A_TAMPER_EVIDENT_verify_detects_changes_removals_and_reordering(conn, tamper):
    await append(conn, 0, [new("s-1", 1), new("s-1", 2), new("s-1", 3)])
    await append(conn, 0, [new("s-2", 4), new("s-2", 5)])
    assert (await verify_chain(conn)).ok
    await _as_superuser_bypassing_triggers(conn, tamper)
    report = await verify_chain(conn)
    assert not report.ok
    assert report.problems


async def test_a_stream_read_but_not_written_may_not_have_moved_either(conn):
    await append(conn, 0, [new("catalogue", 1)])
    await append(conn, 1, [new("catalogue", 2)])  # another writer moves the catalogue on
    with pytest.raises(store.ConcurrencyConflict):
        async with conn.transaction():
            await store.append(conn, [(0, [new("account-1", 1)])], read_versions={"catalogue": 1})
    async with conn.transaction():
        await store.append(conn, [(0, [new("account-1", 1)])], read_versions={"catalogue": 2, "never-written": 0})
    assert len(await store.read_stream(conn, "account-1")) == 1


async def test_periodic_verifier_walks_the_whole_chain_and_flags_tampering(database_url, conn):
    from prometheus_client import REGISTRY

    from services.common.runtime.integrity import PeriodicVerifier

    pool = await create_pool(database_url, role="wuguan_service")
    try:
        verifier = PeriodicVerifier(service="test-verify", pool=pool, interval_s=60)
        await append(conn, 0, [new("s-1", 1), new("s-1", 2)])
        assert await verifier.verify_once()
        await append(conn, 2, [new("s-1", 3)])
        assert await verifier.verify_once()
        assert verifier.verified_through == 3
        assert REGISTRY.get_sample_value("wuguan_verify_events_checked", {"service": "test-verify"}) == 3
        # an event verified in an earlier walk is changed: the next walk still finds it
        await _as_superuser_bypassing_triggers(conn, "UPDATE events SET payload = '{\"n\": 9}' WHERE global_position = 1")
        assert not await verifier.verify_once()
        assert REGISTRY.get_sample_value("wuguan_verify_ok", {"service": "test-verify"}) == 0
    finally:
        await pool.close()
