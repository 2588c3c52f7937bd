"""A store written before chains per partition (migration 0005) still verifies, is still read in
order by the relays and the projector, and takes new appends on chains (issue 13: "existing
stores still verify, rebuild and replay")."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from services.common.db import connect
from services.common.eventstore import store
from services.common.eventstore.chain import GENESIS_HASH, chain_link
from services.common.eventstore.migrate import _migration_files, migrate
from services.common.eventstore.records import NewEvent
from services.common.eventstore.verify import verify_chain

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
LEGACY_COLUMNS = ("global_position", "stream_id", "stream_version", "event_id", "event_type", "schema_version",
                  "service", "business_time", "causation_id", "correlation_id", "payload", "prev_hash", "hash")


def event(n: int, chain: str | None = None) -> NewEvent:
    return NewEvent(event_id=str(uuid.uuid4()), stream_id="acc-1", event_type="test.Happened", service="dunning",
                    business_time=T0, payload={"n": n}, causation_id=f"input-{n}", chain_id=chain)


async def store_as_before_chains(conn, count: int) -> None:
    """Migrations up to 0004 and `count` events appended as the single-chain store did."""
    await conn.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())")
    for name, sql in _migration_files():
        if name < "0005":
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    prev, rows = GENESIS_HASH, []
    for n in range(1, count + 1):
        e = event(n)
        link = chain_link(prev, n, n, e)
        rows.append((n, e.stream_id, n, e.event_id, e.event_type, 1, e.service, T0, e.causation_id, None,
                     e.payload, prev, link))
        prev = link
    await conn.copy_records_to_table("events", columns=LEGACY_COLUMNS, records=rows)
    await conn.execute("INSERT INTO event_chain_head (singleton, global_position, hash) VALUES (true, $1, $2)",
                       count, prev)
    await conn.execute("INSERT INTO relay_checkpoints (relay, global_position) VALUES ('relay:dunning', 2)")


async def test_a_store_from_before_chains_verifies_relays_in_order_and_grows_on_chains(database_url):
    conn = await connect(database_url)
    try:
        await store_as_before_chains(conn, 4)
        applied = await migrate(conn)  # those since, the chains first
        assert applied[:2] == ["0005_partition_chains.sql", "0006_poison_holds.sql"], applied
        async with conn.transaction():
            new = await store.append(conn, [(4, [event(5, "dunning/billing.bill.v1/0")])])
        assert new[0].global_position == 5 and new[0].chain_seq == 1  # positions go on after the old log
        report = await verify_chain(conn)
        assert report.ok, report.problems
        assert (report.events_checked, report.chains_checked) == (5, 2)

        # the relay's checkpoint at position 2 resumes after it: 3 and 4 of the old log, then 5
        checkpoint = await conn.fetchrow("SELECT tx_id, global_position FROM relay_checkpoints")
        unread = await conn.fetch(f"SELECT global_position FROM {store.committed_after('100')}"
                                  f" ORDER BY {store.COMMIT_ORDER}", checkpoint["tx_id"], checkpoint["global_position"])
        assert [r["global_position"] for r in unread] == [3, 4, 5]

        async with conn.transaction():  # the old chain stays tamper-evident
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE events SET payload = '{\"n\": 9}' WHERE global_position = 2")
        problems = (await verify_chain(conn)).problems
        assert problems == ["chain log seq 2 (position 2): content does not match its hash"]
    finally:
        await conn.close()
