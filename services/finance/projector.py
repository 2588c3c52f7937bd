"""The catch-up projector: reads `events` in commit order in pages and applies
projection_rules to the finance tables, moving its checkpoint in the same transaction.

Per page: the audit-trail index rows of every decision are written by one set-based statement
(projection_rules.INDEX_PAGE_SQL), which hands back only the decisions Python must look at
(those a rule projects, those that set a timer); their operations are then batched by statement
where reordering cannot change the result (_batches). Catch-up and rebuild run this same code;
only the page size differs, and the result does not depend on it. A rebuild by the tables' owner
leaves the trail rows below its horizon to a second connection (trail_tables), which writes
them page by page while this one applies the rules.

The log is read in commit order, (tx_id, global_position), up to the oldest transaction still
running (store.committed_after), so following it never skips a late commit. The checkpoint row is locked FOR UPDATE for the page, so two
projectors (two API processes, or the API and `wuguan projections rebuild`) serialise instead
of applying a page twice.
"""
from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from services.common.eventstore.store import CURRENT_HORIZON

from . import trail_tables
from .projection_rules import (CHANNEL_COUNTS_SQL, DAILY_COUNTS_SQL, INDEX_PAGE_SQL, RULE_ROWS_SQL, RULE_TYPES, SET_FORMS,
                               TIMER_ORIGINS_SQL, Op, Row, projection_ops, timer_origin)
from .schema import PROJECTION_TABLES

log = logging.getLogger(__name__)
PROJECTOR = "finance"
PAGE_SIZE = 1000
# A rebuild reads the whole log: larger pages mean fewer round trips and larger statement batches.
REBUILD_PAGE_SIZE = 25_000


@dataclass(frozen=True)
class Progress:
    position: int
    applied: int  # events read in this call


def _batches(ops: list[Op]) -> list[tuple[str, list[tuple]]]:
    """Operations in log order -> (statement, [parameters]) batches, run in order.

    Each operation joins the first batch of its statement after the batch that holds the previous
    operation of its key, or starts a new batch at the end. So a key's operations keep their
    order and a batch never holds two of one key; operations of different keys commute
    (projection_rules.Op), so one statement per batch gives what running the operations one by
    one in log order gives."""
    batches: list[tuple[str, list[tuple]]] = []
    by_statement: dict[str, list[int]] = {}  # statement -> indexes of its batches, ascending
    after: dict[str, int] = {}  # key -> the batch holding its latest operation
    for sql, args, key in ops:
        candidates = by_statement.setdefault(sql, [])
        i = bisect.bisect_right(candidates, after.get(key, -1))
        if i < len(candidates):
            index = candidates[i]
        else:
            index = len(batches)
            batches.append((sql, []))
            candidates.append(index)
        batches[index][1].append(args)
        after[key] = index
    return batches


async def project_page(conn: asyncpg.Connection, page_size: int = PAGE_SIZE) -> Progress:
    """Apply the next page of events, if any, in one transaction with the checkpoint."""
    async with conn.transaction():
        checkpoint = await conn.fetchrow(
            "SELECT tx_id, global_position FROM finance.checkpoint WHERE projector = $1 FOR UPDATE", PROJECTOR
        )
        await conn.execute("SET LOCAL work_mem = '64MB'")  # the page's index rows, sorted in memory
        *rows, size = await conn.fetch(INDEX_PAGE_SQL, checkpoint["tx_id"], checkpoint["global_position"], RULE_TYPES,
                                       PROJECTOR, page_size)
        read = size["page_rows"]
        if not read:
            return Progress(checkpoint["global_position"], 0)
        await _apply(conn, rows)
        return Progress(size["global_position"], read)


async def _apply(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    """The rules' operations and the timers' origins of a page's decisions, in its order."""
    ops, timers = [], ([], [])
    for r in rows:
        if r["timer_id"] is not None:
            timer, origin = timer_origin(r["global_position"], r["timer_id"])
            timers[0].append(timer)
            timers[1].append(origin)
        if r["envelope"] is not None:
            row = Row(r["global_position"], r["event_id"], r["event_type"], r["stream_id"], r["business_time"],
                      r["envelope"])
            ops.extend(projection_ops(row))
    for sql, args in _batches(ops):
        form = SET_FORMS.get(sql)
        if form is not None and len(args) > 1 and len({a[form.key] for a in args}) == len(args):
            await conn.execute(form.sql, *map(list, zip(*args)))
        else:
            await conn.executemany(sql, args)
    if timers[0]:
        await conn.execute(TIMER_ORIGINS_SQL, *timers)


async def catch_up(conn: asyncpg.Connection, page_size: int = PAGE_SIZE) -> Progress:
    """Apply pages until the log's head; returns the final position and events applied."""
    total = 0
    while True:
        progress = await project_page(conn, page_size)
        total += progress.applied
        if progress.applied < page_size:
            return Progress(progress.position, total)


# The audit-trail index tables and their primary keys. A rebuild writes ~1.6 rows a decision
# into them; keeping their btrees row by row costs more than building them once from the
# finished tables (a sort), so a rebuild drops the keys and adds them back at its end.
INDEX_KEYS = (
    ("account_decisions", "account_id, global_position"),
    ("ticket_decisions", "ticket_id, global_position"),
    ("decision_causes", "cause_id, global_position"),
)


async def rebuild(conn: asyncpg.Connection, page_size: int = REBUILD_PAGE_SIZE,
                  open_helper: Callable[[], Awaitable[asyncpg.Connection]] | None = None) -> Progress:
    """Truncate every projection and replay from position 0 (A.REPLAY).

    One transaction, so a failed rebuild changes nothing, and readers see the old projections
    (they wait on the truncated tables) until the new ones are complete. The pages are applied
    by the catch-up code itself, each in a savepoint: the same rows whatever the page size.
    `open_helper` opens a second connection: a role that owns the tables then has it write the
    trail tables beside the pages (_rebuild_beside); otherwise one connection does it all.
    """
    helper, failed = None, True
    try:
        async with conn.transaction():
            await conn.fetchrow("SELECT 1 FROM finance.checkpoint WHERE projector = $1 FOR UPDATE", PROJECTOR)
            # The transaction waits, idle, while a second connection is opened and works.
            await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            # Dropping a key or a table takes the tables' owner; any other role rebuilds with the keys in place.
            owner = await conn.fetchval(
                "SELECT bool_and(pg_has_role(current_user, tableowner, 'USAGE')) FROM pg_tables"
                " WHERE schemaname = 'finance' AND tablename = ANY($1::text[])", list(trail_tables.TABLES))
            if owner and open_helper is not None:
                helper, shapes = await _helper(open_helper)  # before the truncation locks the tables
            await _truncate(conn)
            if helper is not None:
                progress = await _rebuild_beside(conn, helper, shapes, page_size)
            elif owner:
                progress = await _rebuild_without_keys(conn, page_size)
            else:
                progress = await catch_up(conn, page_size)
        failed = False
        return progress
    finally:
        if helper is not None:  # after the transaction, which may hold the helper's tables
            await trail_tables.close(helper, failed)


async def _rebuild_without_keys(conn: asyncpg.Connection, page_size: int) -> Progress:
    """The pages with the trail tables' keys dropped, and the keys built once at the end."""
    for name, _ in INDEX_KEYS:
        await conn.execute(f"ALTER TABLE finance.{name} DROP CONSTRAINT {name}_pkey")
    progress = await catch_up(conn, page_size)
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for name, columns in INDEX_KEYS:
        await conn.execute(f"ALTER TABLE finance.{name} ADD CONSTRAINT {name}_pkey PRIMARY KEY ({columns})")
    return progress


async def _helper(open_helper: Callable[[], Awaitable[asyncpg.Connection]]
                  ) -> tuple[asyncpg.Connection | None, list[trail_tables.Shape] | None]:
    """The second connection with its tables made, or (None, None) when the rebuild had better
    run in one connection: the connection refused, or a table the swap would change."""
    helper = None
    try:
        helper = await open_helper()
        return helper, await trail_tables.prepare(helper)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, trail_tables.NotSwappable) as exc:
        # The reason names tables and the error its class: no data (A.PRIVACY).
        reason = str(exc) if isinstance(exc, trail_tables.NotSwappable) else type(exc).__name__
        log.warning("projections rebuild: in one connection (%s)", reason)
        if helper is not None:
            await trail_tables.close(helper, failed=True)
        return None, None
    except BaseException:
        if helper is not None:
            await trail_tables.close(helper, failed=True)
        raise


async def _truncate(conn: asyncpg.Connection) -> None:
    """Every projection emptied and the checkpoint back at the log's start."""
    tables = ", ".join(f"finance.{name}" for name, _ in PROJECTION_TABLES)
    await conn.execute(f"TRUNCATE {tables}")
    await conn.execute(
        "UPDATE finance.checkpoint SET tx_id = '0', global_position = 0, as_of = NULL WHERE projector = $1", PROJECTOR)


async def _rebuild_beside(conn: asyncpg.Connection, helper: asyncpg.Connection, shapes: list[trail_tables.Shape],
                          page_size: int) -> Progress:
    """The rebuild with `helper` writing the trail tables up to a horizon while this connection
    applies the rules up to it; the tables swapped in, the counts and the checkpoint set where a
    page would have left them, then the ordinary pages from there."""
    horizon = await conn.fetchval(f"SELECT {CURRENT_HORIZON}")  # the pages' own, taken once
    rules = asyncio.ensure_future(_rule_pages(conn, horizon, page_size))
    trails = asyncio.ensure_future(trail_tables.fill(helper, horizon, shapes))
    try:
        await asyncio.wait((rules, trails), return_when=asyncio.FIRST_EXCEPTION)
        for task in (rules, trails):  # the first to fail ends both (the other is cancelled below)
            if task.done() and task.exception() is not None:
                raise task.exception()
        below = trails.result()
    finally:
        for task in (rules, trails):
            task.cancel()
        await asyncio.gather(rules, trails, return_exceptions=True)
    await trail_tables.swap(conn, shapes)
    if below.days:
        await conn.execute(DAILY_COUNTS_SQL, below.days, below.day_counts)
    if below.channels:
        await conn.execute(CHANNEL_COUNTS_SQL, below.channels, below.channel_counts)
    if below.decisions:
        await conn.execute("UPDATE finance.checkpoint SET tx_id = $1, global_position = $2, as_of = $3"
                           " WHERE projector = $4", below.tx_id, below.global_position, below.as_of, PROJECTOR)
    rest = await catch_up(conn, page_size)
    return Progress(rest.position, below.decisions + rest.applied)


async def _rule_pages(conn: asyncpg.Connection, horizon: int, page_size: int) -> None:
    """The rules applied to every decision below `horizon` that one projects, page by page."""
    cursor = await conn.cursor(RULE_ROWS_SQL, RULE_TYPES, horizon)
    while rows := await cursor.fetch(page_size):
        await _apply(conn, rows)


async def checksum(conn: asyncpg.Connection) -> str:
    """A digest of every projection row, in a fixed order, and of the checkpoint."""
    digest = hashlib.sha256()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for name, order in PROJECTION_TABLES:
            # Row text of a fixed column list; tables hold no wall-clock column, so a rebuild
            # and an incremental projection of the same log give the same text.
            part = await conn.fetchval(
                f"SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY {order})), '') FROM finance.{name} t"
            )
            count = await conn.fetchval(f"SELECT count(*) FROM finance.{name}")
            digest.update(f"{name}:{count}:{part}\n".encode())
        head = await conn.fetchrow(
            "SELECT global_position, as_of FROM finance.checkpoint WHERE projector = $1", PROJECTOR
        )
        digest.update(f"checkpoint:{head['global_position']}:{head['as_of'] and head['as_of'].isoformat()}".encode())
    return digest.hexdigest()


async def run_projector(pool: asyncpg.Pool, interval_s: float, stop: asyncio.Event,
                        on_progress=None) -> None:
    """Background loop of the API process: catch up, sleep, repeat; survives database outages."""
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                progress = await catch_up(conn)
            if on_progress is not None:
                on_progress(progress)
        except (asyncpg.PostgresError, OSError) as exc:
            # No event content in the message: only the error class (A.PRIVACY).
            log.warning("projector: database unavailable (%s); retrying", type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
