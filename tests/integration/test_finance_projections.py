"""The finance projector on real Postgres over a real decision history (A.REPLAY: a rebuild
from position 0 gives the same rows as incremental projection, page by page)."""
from __future__ import annotations

import asyncpg
import pytest

from services.common.db import connect
from services.common.eventstore.store import append
from services.finance import projector, trail_tables
from services.finance.projector import catch_up, checksum, project_page, rebuild
from services.finance.schema import ensure_schema

from .test_finance_scenario import as_new_events, guard_and_dunning, cards, store

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(database_url):
    conn = await connect(database_url)
    await ensure_schema(conn)
    yield conn
    await conn.close()


async def test_projects_disputes_credit_notes_arrears_fees_suspensions_and_cards(conn):
    await store(conn, guard_and_dunning() + cards())
    progress = await catch_up(conn)
    assert progress.position == await conn.fetchval("SELECT max(global_position) FROM events")

    disputes = {r["ticket_id"]: r for r in await conn.fetch("SELECT * FROM finance.disputes")}
    assert set(disputes) == {"T1", "T2", "T3"}
    t1, t2, t3 = disputes["T1"], disputes["T2"], disputes["T3"]
    assert (t1["status"], t1["owner_id"], t1["resolution"], t1["credit_minor"], t1["held_minor"]) == (
        "closed", "agent-2", "partiallyUpheld", 1_500, 0)
    assert t1["replied_at"] is not None and not t1["reply_overdue"]
    assert (t2["status"], t2["held_minor"], t2["reply_overdue"]) == ("acknowledged", 2_500, True)  # D.REPLY_15D
    assert (t3["status"], t3["held_minor"]) == ("cancelled", 0)

    [note] = await conn.fetch("SELECT * FROM finance.credit_notes")
    assert (note["ticket_id"], note["amount_minor"], note["how"]) == ("T1", 1_500, "manual")

    arrears = {r["account_id"]: r for r in await conn.fetch("SELECT * FROM finance.arrears")}
    assert arrears["D1"]["status"] == "open" and arrears["D1"]["suspension_requested_at"] is not None
    assert arrears["D2"]["status"] == "closed" and arrears["D3"]["status"] == "open"
    [fee] = await conn.fetch("SELECT * FROM finance.late_fees")
    assert fee["account_id"] == "D2" and fee["fee_minor"] == 5_000 * 12 * 3 // 1000  # DN.LATE_FEE
    reminders = await conn.fetch("SELECT * FROM finance.reminders WHERE account_id = 'D1'")
    assert any(r["delivered"] for r in reminders)

    [susp] = await conn.fetch("SELECT * FROM finance.suspensions")
    assert (susp["account_id"], susp["outcome"]) == ("D1", "approved") and susp["restoration_ordered_at"]
    [restore] = await conn.fetch("SELECT * FROM finance.restorations")
    assert restore["sla_missed_at"] is not None  # CP4.RESTORE_48H breached
    assert restore["completion"] == "late" and restore["completed_at"] is not None

    cards_rows = {r["complaint_id"]: r for r in await conn.fetch("SELECT * FROM finance.card_replacements")}
    assert {k: (v["outlet_id"], v["outcome"]) for k, v in cards_rows.items()} == {
        "CMP-1": ("O1", "replaced"), "CMP-2": ("O2", "escalated"), "CMP-3": ("O1", "referred")}
    assert cards_rows["CMP-1"]["transferred_minor"] == 5_000

    as_of = await conn.fetchval("SELECT as_of FROM finance.checkpoint")
    assert as_of == await conn.fetchval("SELECT max(business_time) FROM events")


async def test_index_rows_name_the_account_ticket_causes_and_timer(conn):
    history = guard_and_dunning()
    await store(conn, history)
    await catch_up(conn)
    [overdue] = [d for d in history if d["decisionType"] == "guard.DisputeReplyOverdue"]
    assert "accountId" not in overdue["payload"]  # taken from its account stream instead
    pos = await conn.fetchval("SELECT global_position FROM events WHERE event_id = $1::uuid", overdue["decisionId"])
    assert await conn.fetchval("SELECT account_id FROM finance.account_decisions WHERE global_position = $1", pos) == "A2"
    assert await conn.fetchval("SELECT ticket_id FROM finance.ticket_decisions WHERE global_position = $1", pos) == "T2"
    assert [r[0] for r in await conn.fetch(
        "SELECT cause_id FROM finance.decision_causes WHERE global_position = $1", pos)] == overdue["causedBy"]
    # The timer that fired it leads back to the decision that set it (DisputeOpened of T2).
    origin = await conn.fetchval("SELECT global_position FROM finance.timer_origins WHERE timer_event_id = $1",
                                 overdue["causedBy"][0])
    opened = await conn.fetchval("SELECT payload->>'decisionType' FROM events WHERE global_position = $1", origin)
    assert opened == "guard.DisputeOpened"
    # Every decision of the history names its causes; tariff and switch decisions name no account.
    assert await conn.fetchval("SELECT count(DISTINCT global_position) FROM finance.decision_causes") == len(history)
    unnamed = await conn.fetchval("SELECT count(*) FROM events e WHERE NOT EXISTS"
                                  " (SELECT 1 FROM finance.account_decisions a WHERE a.global_position = e.global_position)")
    assert unnamed == sum(d["streamId"] in ("guard-tariffs",) or d["streamId"].startswith("guard-switch-")
                          for d in history)


@pytest.mark.parametrize("beside", [False, True], ids=["one connection", "trail tables beside"])
async def test_rebuild_gives_the_checksum_of_incremental_projection(conn, database_url, open_helper, beside,
                                                                   monkeypatch):
    monkeypatch.setattr(trail_tables, "PAGE_SIZE", 7)  # the other connection's pages too
    monkeypatch.setattr(trail_tables, "TIMERS_PER_COPY", 2)
    history = guard_and_dunning() + cards()
    appends = as_new_events(history)  # one versioning for both waves: a stream may span them
    half = len(appends) // 2
    # Incremental: events arrive in two waves and are projected in small pages as they come.
    async with conn.transaction():
        await append(conn, appends[:half])
    while (await project_page(conn, page_size=7)).applied:
        pass
    async with conn.transaction():
        await append(conn, appends[half:])
    await catch_up(conn, page_size=5)
    incremental = await checksum(conn)
    assert (await catch_up(conn)).applied == 0  # nothing left: idempotent at the head
    assert await checksum(conn) == incremental
    await conn.execute("COMMENT ON TABLE finance.account_decisions IS 'an account''s decisions: its trail'")
    shape = await _trail_shape(conn)
    reader = await connect(database_url)  # as the API's pool, with its statements prepared before the rebuild
    trail = await reader.prepare("SELECT count(*) FROM finance.account_decisions")
    trail_rows = await trail.fetchval()
    tables = await _table_ids(conn)
    checkpoint = await conn.fetchrow("SELECT tx_id, global_position, as_of FROM finance.checkpoint")

    progress = await rebuild(conn, page_size=5, open_helper=open_helper if beside else None)
    assert progress.applied == len(history)
    assert await conn.fetchrow("SELECT tx_id, global_position, as_of FROM finance.checkpoint") == checkpoint
    assert (await _table_ids(conn) != tables) == beside  # swapped in, or rebuilt in place
    assert await trail.fetchval() == trail_rows  # the table swapped in, found by its name
    await reader.close()
    await conn.execute("SET ROLE wuguan_finance")  # the API's role reads them through the grants restored
    try:
        assert await conn.fetchval("SELECT count(*) FROM finance.decision_causes") > 0
    finally:
        await conn.execute("RESET ROLE")
    assert await checksum(conn) == incremental
    assert await _index_keys(conn) == INDEX_TABLES  # dropped for the rebuild, built again at its end
    # Tables swapped in keep the names, keys, owner and grants of those they replace.
    assert await _trail_shape(conn) == shape
    assert not await _leftovers(conn)

    # The checksum does see a difference.
    await conn.execute("UPDATE finance.disputes SET held_minor = held_minor + 1 WHERE ticket_id = 'T2'")
    assert await checksum(conn) != incremental


async def test_a_rebuild_beside_a_transaction_still_open_leaves_its_decisions_to_the_next_pages(conn, database_url,
                                                                                              open_helper):
    """The trail tables are written up to the rebuild's horizon, the oldest transaction still open:
    an append that commits after the rebuild began is projected by the pages after it, trails
    included, as an incremental projection would."""
    history = guard_and_dunning() + cards()
    appends = as_new_events(history)
    third = len(appends) // 3
    async with conn.transaction():
        await append(conn, appends[:third])
    late = await connect(database_url)
    after = await connect(database_url)
    try:
        open_append = late.transaction()
        await open_append.start()
        await append(late, appends[third:2 * third])  # open through the rebuild: its horizon
        async with after.transaction():  # committed, but after the horizon
            await append(after, appends[2 * third:])
        progress = await rebuild(conn, open_helper=open_helper)
        assert progress.applied == third
        await open_append.commit()
    finally:
        await late.close()
        await after.close()
    assert (await catch_up(conn)).applied == len(history) - third
    rebuilt = await checksum(conn)

    assert (await rebuild(conn)).applied == len(history)  # everything, in one connection
    assert await checksum(conn) == rebuilt


async def test_a_rebuild_beside_follows_commit_order_where_positions_do_not(conn, database_url, open_helper,
                                                                            monkeypatch):
    """A transaction that began first commits last: its rows come first in commit order (tx_id)
    and last by position. Both connections of a rebuild go by commit order, as the pages do: the
    timer set in both waves has its origin in the earlier transaction, and the checkpoint ends on
    the latest transaction's last row."""
    monkeypatch.setattr(trail_tables, "PAGE_SIZE", 7)
    history = guard_and_dunning() + cards()
    [timer_setter] = [d for d in history[10:20] if d["decisionType"] == "guard.SuspensionApproved"]
    history.append({**timer_setter, "decisionId": "6b0c6c7e-52c4-4c1e-9d53-3a5e0f0e7a01",
                    "decisionType": "guard.TimerProbe", "streamId": "guard-account-PROBE"})
    appends = as_new_events(history)
    async with conn.transaction():
        await append(conn, appends[:10])
    first, second = await connect(database_url), await connect(database_url)
    try:
        async with first.transaction():
            begun = await first.fetchval("SELECT pg_current_xact_id()")
            async with second.transaction():
                await append(second, appends[10:20])
            await append(first, appends[20:])
    finally:
        await first.close()
        await second.close()
    assert await conn.fetchval("SELECT count(*) FROM events WHERE tx_id = $1 AND global_position > ALL"
                               " (SELECT global_position FROM events WHERE tx_id <> $1)", begun) == len(appends[20:])
    assert (await rebuild(conn, page_size=5)).applied == len(history)
    one_connection = await checksum(conn)
    assert (await rebuild(conn, page_size=5, open_helper=open_helper)).applied == len(history)
    assert await checksum(conn) == one_connection


async def test_a_rebuild_whose_trail_tables_fail_changes_nothing(conn, open_helper, monkeypatch):
    history, projected = await _projected(conn)
    monkeypatch.setattr(trail_tables, "TRAIL_PAGE_SQL",
                        "SELECT 1 / 0 WHERE $1::bigint < $2::bigint AND $3::xid8 IS NOT NULL")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await rebuild(conn, open_helper=open_helper)
    assert await checksum(conn) == projected
    assert await _index_keys(conn) == INDEX_TABLES
    assert not await _leftovers(conn)
    monkeypatch.undo()
    assert (await rebuild(conn, open_helper=open_helper)).applied == len(history)
    assert await checksum(conn) == projected


async def test_a_rebuild_that_fails_after_the_swap_changes_nothing(conn, open_helper, monkeypatch):
    _, projected = await _projected(conn)
    tables = await _table_ids(conn)
    monkeypatch.setattr(projector, "DAILY_COUNTS_SQL", "SELECT 1 / 0 WHERE cardinality($1::date[]) = cardinality($2::bigint[])")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await rebuild(conn, open_helper=open_helper)
    assert await checksum(conn) == projected and await _table_ids(conn) == tables
    assert not await _leftovers(conn)  # dropped once the rebuild's transaction had let go of them


async def test_a_rebuild_runs_in_one_connection_when_the_second_is_refused_or_a_table_cannot_be_swapped(
        conn, open_helper):
    history, projected = await _projected(conn)
    tables = await _table_ids(conn)

    async def refused():
        raise OSError("connection refused")
    assert (await rebuild(conn, open_helper=refused)).applied == len(history)
    assert await checksum(conn) == projected and await _table_ids(conn) == tables

    # A view over a trail table would be dropped with it: that table is rebuilt in place.
    await conn.execute("CREATE VIEW finance.accounts_seen AS SELECT DISTINCT account_id FROM finance.account_decisions")
    assert (await rebuild(conn, open_helper=open_helper)).applied == len(history)
    assert await checksum(conn) == projected and await _table_ids(conn) == tables
    assert await conn.fetchval("SELECT count(*) FROM finance.accounts_seen") > 0
    assert not await _leftovers(conn)


async def test_a_rebuild_beside_of_an_empty_log(conn, open_helper):
    empty = await checksum(conn)
    progress = await rebuild(conn, open_helper=open_helper)
    assert (progress.applied, progress.position) == (0, 0)
    assert await checksum(conn) == empty
    await store(conn, guard_and_dunning())  # the checkpoint then starts at the log's start
    assert (await catch_up(conn)).applied == len(guard_and_dunning())


@pytest.fixture
def open_helper(database_url):
    """How a rebuild opens its second connection, as `wuguan projections rebuild` does."""
    return lambda: connect(database_url)


async def _projected(conn) -> tuple[list[dict], str]:
    """The scenario's decisions stored and projected, and the projections' checksum."""
    history = guard_and_dunning() + cards()
    await store(conn, history)
    await catch_up(conn)
    return history, await checksum(conn)


async def _table_ids(conn) -> list[int]:
    return [await conn.fetchval("SELECT $1::regclass::oid", f"finance.{t}") for t in trail_tables.TABLES]


async def _leftovers(conn) -> list:
    return await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'finance' AND tablename LIKE 'rebuild\\_%'")


async def _trail_shape(conn) -> list:
    return [tuple(r) for r in await conn.fetch(
        "SELECT c.relname, c.relowner::regrole::text, c.relacl::text, c.reloptions, obj_description(c.oid, 'pg_class'),"
        " (SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY 1) FROM pg_index i WHERE i.indrelid = c.oid),"
        " (SELECT array_agg(conname || ' ' || pg_get_constraintdef(oid) ORDER BY 1) FROM pg_constraint WHERE conrelid = c.oid),"
        " (SELECT array_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || attcollation"
        "  ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)"
        " FROM pg_class c WHERE c.relnamespace = 'finance'::regnamespace AND c.relname = ANY($1::text[]) ORDER BY 1",
        list(trail_tables.TABLES))]


INDEX_TABLES = {"finance.account_decisions", "finance.ticket_decisions", "finance.decision_causes"}


async def _index_keys(conn) -> set[str]:
    rows = await conn.fetch("SELECT conrelid::regclass::text AS t FROM pg_constraint WHERE contype = 'p'"
                            " AND connamespace = 'finance'::regnamespace")
    return {r["t"] for r in rows} & INDEX_TABLES


async def test_a_rebuild_by_a_role_that_does_not_own_the_tables_keeps_their_keys(conn):
    history = guard_and_dunning() + cards()
    await store(conn, history)
    await catch_up(conn, page_size=3)
    incremental = await checksum(conn)
    await conn.execute("SET ROLE wuguan_finance")  # the API's role: may write rows, may not drop keys
    try:
        assert (await rebuild(conn)).applied == len(history)
    finally:
        await conn.execute("RESET ROLE")
    assert await checksum(conn) == incremental
    assert await _index_keys(conn) == INDEX_TABLES


async def test_a_decision_with_several_causes_indexes_each_distinct_cause_once(conn):
    """A.REPLAY: the audit trail's cause index holds one row per distinct cause of a decision,
    whether it names one cause (nearly all do) or several, some repeated."""
    history = guard_and_dunning()
    history[0] = {**history[0], "causedBy": ["C-1", "C-2", "C-1"]}
    history[1] = {**history[1], "causedBy": []}
    await store(conn, history)
    await catch_up(conn)
    first, second, third = [await conn.fetchval("SELECT global_position FROM events WHERE event_id = $1::uuid",
                                                d["decisionId"]) for d in history[:3]]
    causes = "SELECT cause_id FROM finance.decision_causes WHERE global_position = $1 ORDER BY cause_id"
    assert [r[0] for r in await conn.fetch(causes, first)] == ["C-1", "C-2"]
    assert await conn.fetch(causes, second) == []
    assert [r[0] for r in await conn.fetch(causes, third)] == history[2]["causedBy"]  # one cause, as most
