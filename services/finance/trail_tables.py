"""The audit-trail tables of a rebuild, built by a second connection beside it (issue 13).

A rebuild writes ~2 trail rows a decision (finance.account_decisions, ticket_decisions,
decision_causes) and applies the rules to the few decisions they project; in one connection
Postgres did all of it on one core, the trail rows being most of each page's statement. The trail
rows, the timers' origins and the dashboard's counts are each a function of one decision, so
another connection makes them for every decision below the rebuild's horizon, in one statement,
into tables of their own (finance.rebuild_<table>), each sorted whole and indexed once, while the
rebuild's transaction pages through the decisions a rule projects. The rebuild's transaction then
swaps the finished tables in: readers see the old ones until it commits, as they see the other
projections.

The horizon is a transaction id below which every transaction has ended (pg_snapshot_xmin): both
connections read exactly the rows of transactions below it, whatever commits meanwhile, and the
rebuild goes on from there with its ordinary pages. Swapping tables takes their owner; any other
role rebuilds with one connection (projector.rebuild).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from .projection_rules import TRAIL_TABLES, TRAILS_BELOW_SQL, timer_origin

PREFIX = "rebuild_"
# The tables the other connection writes, and the rebuild swaps in: the trails, and where each
# timer was set (which needs Python: its id is a uuid5).
TABLES = (*TRAIL_TABLES, "timer_origins")


@dataclass(frozen=True)
class Shape:
    """What a trail table carries beside its rows, for the table that replaces it."""
    table: str
    owner: str
    indexes: tuple[tuple[str, str, bool], ...]  # (name, CREATE INDEX statement, backs the primary key)
    grants: tuple[str, ...]  # GRANT statements
    options: tuple[str, ...]  # storage parameters (reloptions)


async def _shape(conn: asyncpg.Connection, table: str) -> Shape:
    relation = f"finance.{table}"
    owner = await conn.fetchval("SELECT relowner::regrole::text FROM pg_class WHERE oid = $1::regclass", relation)
    indexes = await conn.fetch(
        "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS sql, i.indisprimary AS primary_key"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1",
        relation)
    grants = await conn.fetch(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,"
        " string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges"
        " FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner"
        " GROUP BY 1 ORDER BY 1", relation)
    options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = $1::regclass", relation) or []
    return Shape(table, owner, tuple((r["name"], r["sql"], r["primary_key"]) for r in indexes),
                 tuple(f"GRANT {r['privileges']} ON {relation} TO {r['grantee']}" for r in grants), tuple(options))


async def prepare(helper: asyncpg.Connection) -> list[Shape]:
    """Empty tables of the trail tables' columns, before the rebuild locks the trail tables (the
    copy of their columns reads them); what a leftover of a failed rebuild held is dropped."""
    await discard(helper)
    shapes = []
    for table in TABLES:
        shapes.append(await _shape(helper, table))
        await helper.execute(f"CREATE TABLE finance.{PREFIX}{table}"
                             f" (LIKE finance.{table} INCLUDING ALL EXCLUDING INDEXES)")
    return shapes


class Below(NamedTuple):
    """What the pages below the horizon would have counted and where they would have left the
    checkpoint (projection_rules.TRAILS_BELOW_SQL)."""
    decisions: int
    as_of: datetime | None
    tx_id: int | None
    global_position: int | None
    days: list | None
    day_counts: list | None
    channels: list | None
    channel_counts: list | None


async def fill(helper: asyncpg.Connection, horizon: int, shapes: list[Shape]) -> Below:
    """The trail rows and the timers' origins of every decision below `horizon`, then the indexes
    the tables had and their statistics."""
    await helper.execute("SET work_mem = '256MB'")  # the statement's sorts, in memory
    await helper.execute("SET maintenance_work_mem = '256MB'")
    below = await helper.fetchrow(TRAILS_BELOW_SQL, horizon)
    # A timer's first decision in commit order is its origin, as the pages' ON CONFLICT DO NOTHING keeps it.
    origins: dict[str, int] = {}
    for timer_id, position in zip(below["timer_ids"] or (), below["timer_positions"] or ()):
        timer, origin = timer_origin(position, timer_id)
        origins.setdefault(timer, origin)
    await helper.copy_records_to_table(f"{PREFIX}timer_origins", schema_name="finance",
                                       columns=("timer_event_id", "global_position"), records=sorted(origins.items()))
    for shape in shapes:
        for name, sql, primary_key in shape.indexes:
            await helper.execute(_renamed(sql, name, shape.table))
            if primary_key:
                await helper.execute(f"ALTER TABLE finance.{PREFIX}{shape.table}"
                                     f" ADD CONSTRAINT {PREFIX}{name} PRIMARY KEY USING INDEX {PREFIX}{name}")
        await helper.execute(f"ANALYZE finance.{PREFIX}{shape.table}")
    return Below(*(below[field] for field in Below._fields))


def _renamed(sql: str, name: str, table: str) -> str:
    """An index's definition (pg_get_indexdef) for the same index on the rebuild's table."""
    original = f" INDEX {name} ON finance.{table} "
    if original not in sql:
        raise RuntimeError(f"unexpected definition of index {name}: {sql}")
    return sql.replace(original, f" INDEX {PREFIX}{name} ON finance.{PREFIX}{table} ", 1)


async def swap(conn: asyncpg.Connection, shapes: list[Shape]) -> None:
    """In the rebuild's transaction: each trail table replaced by the rebuild's, under the old
    one's names, owner, grants and storage parameters."""
    for shape in shapes:
        await conn.execute(f"DROP TABLE finance.{shape.table}")
        await conn.execute(f"ALTER TABLE finance.{PREFIX}{shape.table} RENAME TO {shape.table}")
        for name, _, _ in shape.indexes:  # a primary key's constraint is renamed with its index
            await conn.execute(f"ALTER INDEX finance.{PREFIX}{name} RENAME TO {name}")
        if shape.options:
            await conn.execute(f"ALTER TABLE finance.{shape.table} SET ({', '.join(shape.options)})")
        await conn.execute(f"ALTER TABLE finance.{shape.table} OWNER TO {shape.owner}")
        for grant in shape.grants:
            await conn.execute(grant)


async def discard(helper: asyncpg.Connection) -> None:
    for table in TABLES:
        await helper.execute(f"DROP TABLE IF EXISTS finance.{PREFIX}{table}")
