"""The finance projector on real Postgres over a real decision history (A.REPLAY: a rebuild
from position 0 gives the same rows as incremental projection, page by page)."""
from __future__ import annotations

import pytest

from services.common.db import connect
from services.finance.projector import catch_up, checksum, project_page, rebuild
from services.finance.schema import ensure_schema

from .test_finance_scenario import guard_and_dunning, cards, store

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


async def test_rebuild_gives_the_checksum_of_incremental_projection(conn):
    history = guard_and_dunning() + cards()
    half = len(history) // 2
    # Incremental: events arrive in two waves and are projected in small pages as they come.
    await store(conn, history[:half])
    while (await project_page(conn, page_size=7)).applied:
        pass
    await store(conn, history[half:])
    await catch_up(conn, page_size=5)
    incremental = await checksum(conn)
    assert (await catch_up(conn)).applied == 0  # nothing left: idempotent at the head
    assert await checksum(conn) == incremental

    progress = await rebuild(conn)
    assert progress.applied == len(history)
    assert await checksum(conn) == incremental

    # The checksum does see a difference.
    await conn.execute("UPDATE finance.disputes SET held_minor = held_minor + 1 WHERE ticket_id = 'T2'")
    assert await checksum(conn) != incremental
