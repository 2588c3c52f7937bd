"""The audit-trail tables of a rebuild, built by a second connection beside it (issue 13).

A rebuild writes ~2 trail rows a decision (finance.account_decisions, ticket_decisions,
decision_causes) and applies the rules to the few decisions they project; in one connection
Postgres did all of it on one core, the trail rows being most of each page's statement. The trail
rows, the timers' origins and the dashboard's counts are each a function of one decision, so
another connection makes them for every decision below the rebuild's horizon, page by page, into
tables of their own (finance.rebuild_<table>), indexed once at the end, while the rebuild's
transaction pages through the decisions a rule projects. The rebuild's transaction then swaps the
finished tables in: readers see the old ones until it commits, as they see the other projections.

The horizon is a transaction id below which every transaction has ended (pg_snapshot_xmin): both
connections read exactly the rows of transactions below it, whatever commits meanwhile, and the
rebuild goes on from there with its ordinary pages.

A table is swapped in under the old one's name, indexes, owner, grants, comment and storage
parameters. What a swap would lose or break (a view or foreign key over the table, triggers,
policies, column grants, another kind of table) makes the table NotSwappable, and the rebuild then
runs in one connection, as it does for a role that does not own the tables (projector.rebuild).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from .projection_rules import FIRST_TIMERS_SQL, TRAIL_PAGE_SQL, TRAIL_TABLES, timer_origin

log = logging.getLogger(__name__)

PREFIX = "rebuild_"
# The tables the other connection writes, and the rebuild swaps in: the trails, and where each
# timer was set (which needs Python: its id is a uuid5).
TABLES = (*TRAIL_TABLES, "timer_origins")
PAGE_SIZE = 500_000  # positions a page spans: its rows sorted in memory (work_mem below)
TIMERS_PER_COPY = 50_000
# Creating the tables reads the originals while the rebuild holds the checkpoint's row: a session
# that holds a table and waits for that row would wait for ever, unseen by Postgres.
PREPARE_LOCK_TIMEOUT = "5s"
MAX_NAME = 63  # Postgres's identifiers (NAMEDATALEN - 1)
# The advisory lock (namespace, key) of the finance.rebuild_* tables, as the checkpointer's (7 700 014).
TABLES_LOCK = (7_700_015, 0)

# Why a table cannot be swapped for another without losing something, or NULL.
_UNSWAPPABLE = """
SELECT CASE
    WHEN c.relkind <> 'r' OR c.relpersistence <> 'p' THEN 'not a plain permanent table'
    WHEN c.relrowsecurity THEN 'row-level security'
    WHEN c.reltablespace <> 0 THEN 'a tablespace of its own'
    WHEN c.relreplident <> 'd' THEN 'a replica identity of its own'
    WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid) THEN 'inheritance'
    WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal) THEN 'triggers'
    WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE (conrelid = c.oid AND contype NOT IN ('p', 'c', 'n'))
                 OR confrelid = c.oid) THEN 'constraints other than its key and checks'
    WHEN EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
                 AND d.deptype = 'n') THEN 'objects that depend on it (views, foreign keys, functions)'
    WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON d.classid = 'pg_class'::regclass AND s.oid = d.objid
                 WHERE d.refobjid = c.oid AND s.relkind = 'S') THEN 'a sequence it owns'
    WHEN EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = c.oid) THEN 'policies'
    -- ALTER TABLE … OWNER TO: a role the rebuild's may act as, which may create in the schema
    WHEN NOT pg_has_role(current_user, c.relowner,
                         CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)
        THEN 'an owner this role cannot act as'
    WHEN NOT has_schema_privilege(c.relowner, c.relnamespace, 'CREATE') THEN 'an owner that may not create in its schema'
    WHEN EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = c.oid) THEN 'a publication'
    WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attacl IS NOT NULL) THEN 'column grants'
END FROM pg_class c WHERE c.oid = $1::regclass
"""
# Each grantee's privileges on a table but its owner's, by whether they may grant them on.
_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee, a.is_grantable,
       string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner GROUP BY 1, 2 ORDER BY 1, 2
"""


class NotSwappable(Exception):
    """A table the rebuild cannot replace by another without losing what the reason names."""


@dataclass(frozen=True)
class Index:
    name: str  # as written in SQL (quote_ident)
    shadow: str  # the rebuild's table's index, as written in SQL
    create: str  # CREATE INDEX of the shadow
    primary_key: bool


@dataclass(frozen=True)
class Shape:
    """What a trail table carries beside its rows, for the table that replaces it."""
    table: str
    owner: str
    comment: str  # as an SQL literal (quote_nullable): 'text' or NULL
    indexes: tuple[Index, ...]
    grants: tuple[str, ...]  # GRANT statements
    options: tuple[str, ...]  # storage parameters (reloptions)


class Below(NamedTuple):
    """What the pages below the horizon would have counted and where they would have left the
    checkpoint (projection_rules.TRAIL_PAGE_SQL)."""
    decisions: int
    as_of: datetime | None
    tx_id: int | None
    global_position: int | None
    days: list
    day_counts: list
    channels: list
    channel_counts: list


async def _shape(conn: asyncpg.Connection, table: str) -> Shape:
    relation = f"finance.{table}"
    reason = await conn.fetchval(_UNSWAPPABLE, relation)
    if reason:
        raise NotSwappable(f"{relation}: {reason}")
    owner, comment, options = await conn.fetchrow(
        "SELECT relowner::regrole::text, quote_nullable(obj_description(oid, 'pg_class')), reloptions FROM pg_class"
        " WHERE oid = $1::regclass", relation)
    indexes = []
    for name, quoted, shadow, sql, primary_key in await conn.fetch(
            "SELECT c.relname, quote_ident(c.relname), quote_ident($2 || c.relname), pg_get_indexdef(i.indexrelid),"
            " i.indisprimary FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass"
            " ORDER BY 1", relation, PREFIX):
        original = f" INDEX {quoted} ON finance.{table} "
        if len(PREFIX + name) > MAX_NAME or original not in sql:
            raise NotSwappable(f"{relation}: index {name} cannot be built under another name")
        indexes.append(Index(quoted, shadow, sql.replace(original, f" INDEX {shadow} ON finance.{PREFIX}{table} ", 1),
                             primary_key))
    grants = tuple(f"GRANT {r['privileges']} ON {relation} TO {r['grantee']}"
                   f"{' WITH GRANT OPTION' if r['is_grantable'] else ''}"
                   for r in await conn.fetch(_GRANTS, relation))
    return Shape(table, owner, comment, tuple(indexes), grants, tuple(options or ()))


async def prepare(helper: asyncpg.Connection) -> list[Shape]:
    """Empty tables of the swapped tables' columns, made before the rebuild locks the originals
    (copying their columns reads them); a failed rebuild's leftovers are dropped first. Raises
    NotSwappable, or a database error, when the rebuild had better run in one connection."""
    await helper.execute(f"SET lock_timeout = '{PREPARE_LOCK_TIMEOUT}'")
    # Held until close(): one rebuild's tables are never dropped by another's cleanup.
    await helper.execute("SELECT pg_advisory_lock($1, $2)", *TABLES_LOCK)
    await discard(helper)
    shapes = []
    for table in TABLES:
        shapes.append(await _shape(helper, table))
        await helper.execute(f"CREATE TABLE finance.{PREFIX}{table}"
                             f" (LIKE finance.{table} INCLUDING ALL EXCLUDING INDEXES)")
    await helper.execute("RESET lock_timeout")
    await helper.execute('CREATE TEMP TABLE IF NOT EXISTS rebuild_timers (timer_id text COLLATE "C", tx_id xid8, pos bigint)')
    return shapes


async def fill(helper: asyncpg.Connection, horizon: int, shapes: list[Shape]) -> Below:
    """The trail rows, counts and timers' origins of every decision below `horizon`, then the
    indexes the tables had and their statistics."""
    page_size = PAGE_SIZE
    await helper.execute("SET work_mem = '256MB'")  # a page's sorts, in memory
    await helper.execute("SET maintenance_work_mem = '256MB'")
    # A page is a range of positions: read through the log's key in the order the rows lie, where a
    # planner that expects half the table would scan all of it for each page.
    await helper.execute("SET enable_seqscan = off")
    # Every transaction below the horizon has ended: its rows' positions are taken already.
    end = await helper.fetchval("SELECT coalesce(max(global_position), 0) + 1 FROM events")
    decisions, as_of, last = 0, None, None
    days: Counter = Counter()
    channels: Counter = Counter()
    for start in range(0, end, page_size):
        page = await helper.fetchrow(TRAIL_PAGE_SQL, start, min(start + page_size, end), horizon)
        if not page["decisions"]:
            continue
        decisions += page["decisions"]
        if last is None or (page["tx_id"], page["global_position"]) > last:
            last = (page["tx_id"], page["global_position"])
        if page["as_of"] is not None and (as_of is None or page["as_of"] > as_of):
            as_of = page["as_of"]
        days.update(dict(zip(page["days"] or (), page["day_counts"] or ())))
        channels.update(dict(zip(page["channels"] or (), page["channel_counts"] or ())))
    await _timer_origins(helper)
    for shape in shapes:
        for index in shape.indexes:
            await helper.execute(index.create)
            if index.primary_key:
                await helper.execute(f"ALTER TABLE finance.{PREFIX}{shape.table}"
                                     f" ADD CONSTRAINT {index.shadow} PRIMARY KEY USING INDEX {index.shadow}")
        await helper.execute(f"ANALYZE finance.{PREFIX}{shape.table}")
    return Below(decisions, as_of, *(last or (None, None)), *_keys_and_counts(days),
                 *_keys_and_counts(channels))


def _keys_and_counts(counts: Counter) -> tuple[list, list]:
    keys = sorted(counts)
    return keys, [counts[k] for k in keys]


async def _timer_origins(helper: asyncpg.Connection) -> None:
    """Each timer's input id and the decision that set it first, from pg_temp.rebuild_timers."""
    async with helper.transaction():
        cursor = await helper.cursor(FIRST_TIMERS_SQL)
        while rows := await cursor.fetch(TIMERS_PER_COPY):
            await helper.copy_records_to_table(
                f"{PREFIX}timer_origins", schema_name="finance", columns=("timer_event_id", "global_position"),
                records=[timer_origin(pos, timer_id) for timer_id, pos in rows])


async def swap(conn: asyncpg.Connection, shapes: list[Shape]) -> None:
    """In the rebuild's transaction: each table replaced by the rebuild's, under the old one's
    names, owner, grants (and no others), comment and storage parameters."""
    for shape in shapes:
        relation = f"finance.{shape.table}"
        await conn.execute(f"DROP TABLE {relation}")
        await conn.execute(f"ALTER TABLE finance.{PREFIX}{shape.table} RENAME TO {shape.table}")
        for index in shape.indexes:  # a primary key's constraint is renamed with its index
            await conn.execute(f"ALTER INDEX finance.{index.shadow} RENAME TO {index.name}")
        if shape.options:
            await conn.execute(f"ALTER TABLE {relation} SET ({', '.join(shape.options)})")
        await conn.execute(f"ALTER TABLE {relation} OWNER TO {shape.owner}")
        for r in await conn.fetch(_GRANTS, relation):  # what default privileges gave the new table
            await conn.execute(f"REVOKE ALL ON {relation} FROM {r['grantee']}")
        for grant in shape.grants:
            await conn.execute(grant)
        await conn.execute(f"COMMENT ON TABLE {relation} IS {shape.comment}")


async def discard(helper: asyncpg.Connection) -> None:
    for table in TABLES:
        await helper.execute(f"DROP TABLE IF EXISTS finance.{PREFIX}{table}")


async def close(helper: asyncpg.Connection, failed: bool) -> None:
    """The helper closed (its advisory lock with it), after dropping what a failed rebuild left (a
    rebuild that committed renamed its tables). Called once the rebuild's transaction has ended,
    which may hold those tables."""
    try:
        if failed:
            await discard(helper)
        await helper.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("projections rebuild: could not drop its tables finance.%s* (%s); the next rebuild will",
                    PREFIX, type(exc).__name__)
        helper.terminate()
