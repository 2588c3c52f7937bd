"""The index of decisions by type leaves out the guard's rated CDRs (migration 0011, issue 13's
lean rows): queries by the rare types still find their rows through it, and the bulk type costs
no entry."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from schemas.decision_types import dunning, guard
from services.common.eventstore import store
from services.common.eventstore.records import NewEvent
from services.common.localstack.summary import MONEY_SQL, MONEY_TYPES, REMINDERS_SQL, REMINDER_TYPES
from services.finance.self_check import TYPES as SELF_CHECK_TYPES

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
INDEX = "events_type_position_rare"


async def _store(conn, types: list[str]) -> None:
    events = [NewEvent(event_id=str(uuid.uuid4()), stream_id=f"s-{i}", event_type=t, service="billing_guard",
                       business_time=T0, payload={"n": i}) for i, t in enumerate(types)]
    async with conn.transaction():
        await store.append(conn, [(0, [e]) for e in events])


async def _plan(conn, sql: str, types: str, *args) -> str:
    """The plan a prepared `sql` runs with once Postgres may pick a generic plan (after five runs):
    a generic plan cannot use a partial index, so the choice between them is part of the test."""
    name = f"q_{uuid.uuid4().hex[:8]}"
    # The services' connections plan every run for its parameters (db.SERVER_SETTINGS); any other
    # client lets Postgres keep a generic plan after five runs, which cannot use a partial index.
    await conn.execute("SET plan_cache_mode = auto")
    await conn.execute(f"PREPARE {name}{f'({types})' if types else ''} AS {sql}")
    run = f"EXECUTE {name}" + (f"({', '.join(map(_literal, args))})" if args else "")
    for _ in range(6):
        await conn.execute(run)
    rows = await conn.fetch(f"EXPLAIN {run}")
    await conn.execute(f"DEALLOCATE {name}")
    return "\n".join(r[0] for r in rows)


def _literal(value) -> str:
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(map(_literal, value)) + "]::text[]"
    return "'" + value.replace("'", "''") + "'"


async def test_the_index_leaves_out_rated_cdrs_only(conn):
    predicate = await conn.fetchval(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = $1::regclass", INDEX)
    assert predicate == f"(event_type <> '{guard.CDR_RATED}'::text)"  # the contract's name for them
    await _store(conn, [guard.CDR_RATED] * 20 + [guard.DISPUTE_OPENED, dunning.REMINDER_SCHEDULED])
    entries = await conn.fetchval(
        "SELECT count(*) FROM events WHERE event_type <> $1", guard.CDR_RATED)
    assert entries == 2
    assert await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'events_type_position'") == 0


@pytest.fixture
async def bulk(conn):
    """A log that is mostly rated CDRs, as a guard's is, with a few decisions of rare types."""
    await _store(conn, [guard.CDR_RATED] * 3000 + [guard.DISPUTE_OPENED, dunning.REMINDER_SCHEDULED,
                                                    guard.SUSPENSION_APPROVED, guard.TARIFF_VERSION_ACCEPTED])
    await conn.execute("ANALYZE events")
    return conn


# The queries by type of the approvals due (billing_guard/cli.py), finance's self-check, the local
# stack's reminders summary and the bench's and chaos's tariff check.
@pytest.mark.parametrize("sql, types, args", [
    ("SELECT payload FROM events WHERE service = 'billing_guard' AND event_type = ANY($1::text[])"
     " ORDER BY global_position", "text[]", ([guard.SUSPENSION_AWAITING_APPROVAL, guard.SUSPENSION_APPROVED],)),
    ("SELECT payload FROM events WHERE event_type = ANY($1::text[]) ORDER BY global_position", "text[]",
     (list(SELF_CHECK_TYPES),)),
    (REMINDERS_SQL, "text, text", REMINDER_TYPES),
    ("SELECT count(*) FROM events WHERE event_type = 'guard.TariffVersionAccepted'", "", ()),
])
async def test_queries_by_rare_types_use_it(bulk, sql, types, args):
    assert INDEX in await _plan(bulk, sql, types, *args)


async def test_the_money_summary_of_rated_cdrs_reads_the_table(bulk):
    assert INDEX not in await _plan(bulk, MONEY_SQL, "text, text", *MONEY_TYPES)
    assert (await bulk.fetchrow(MONEY_SQL, *MONEY_TYPES))["rated_calls"] == 3000
