"""wuguan_reader (BI tools): can select every finance view, cannot read the tables underneath or
the log, and cannot write anything anywhere."""
from __future__ import annotations

import asyncpg
import pytest

from services.common.db import connect
from services.finance.projector import catch_up
from services.finance.schema import ensure_schema

from .test_finance_scenario import scenario, store

pytestmark = pytest.mark.integration

VIEWS = ("v_as_of", "v_disputes", "v_credit_notes", "v_arrears", "v_arrears_aging", "v_reminders_by_channel",
         "v_late_fees", "v_suspensions", "v_restorations", "v_card_replacements", "v_card_replacements_by_outlet")


async def test_reader_role_selects_views_and_nothing_else(database_url):
    conn = await connect(database_url)
    try:
        await ensure_schema(conn)
        await store(conn, scenario())
        await catch_up(conn)
        role = await conn.fetchrow("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'wuguan_reader'")
        assert role is not None and not role["rolcanlogin"] and not role["rolsuper"]
        await conn.execute("SET ROLE wuguan_reader")
        for view in VIEWS:
            rows = await conn.fetch(f"SELECT * FROM finance.{view}")
            assert rows, view
        refused = [
            "SELECT * FROM finance.disputes",
            "SELECT * FROM events",
            "INSERT INTO finance.disputes (ticket_id, account_id, status, opened_at, disputed_minor, held_minor,"
            " last_position) VALUES ('X', 'X', 'x', now(), 0, 0, 0)",
            "UPDATE finance.disputes SET held_minor = 0",
            "DELETE FROM finance.credit_notes",
            "UPDATE finance.v_late_fees SET fee_minor = 0",  # a simple view is updatable: still refused
            "DELETE FROM finance.v_credit_notes",
            "UPDATE finance.checkpoint SET global_position = 0",
            "INSERT INTO events (global_position) VALUES (999999)",
            "TRUNCATE finance.disputes",
            "CREATE TABLE finance.sneaky (x int)",
        ]
        for sql in refused:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT count(*) FROM finance.disputes") == 3
    finally:
        await conn.close()
