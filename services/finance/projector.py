"""The catch-up projector: reads `events` by global position in pages and applies
projection_rules to the finance tables, moving its checkpoint in the same transaction.

Positions follow commit order (the store appends under one advisory lock), so following them
never skips a late commit. The checkpoint row is locked FOR UPDATE for the page, so two
projectors (two API processes, or the API and `wuguan projections rebuild`) serialise instead
of applying a page twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import asyncpg

from .projection_rules import Row, index_ops, projection_ops
from .schema import PROJECTION_TABLES

log = logging.getLogger(__name__)
PROJECTOR = "finance"
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Progress:
    position: int
    applied: int  # events read in this call


async def _run_ops(conn: asyncpg.Connection, ops) -> None:
    # Consecutive operations with the same statement go in one executemany round trip;
    # order is kept, which matters (an update must follow the insert it updates).
    run_sql, run_args = None, []
    for sql, args in ops:
        if sql != run_sql and run_args:
            await conn.executemany(run_sql, run_args)
            run_args = []
        run_sql = sql
        run_args.append(args)
    if run_args:
        await conn.executemany(run_sql, run_args)


async def project_page(conn: asyncpg.Connection, page_size: int = PAGE_SIZE) -> Progress:
    """Apply the next page of events, if any, in one transaction with the checkpoint."""
    async with conn.transaction():
        checkpoint = await conn.fetchrow(
            "SELECT global_position FROM finance.checkpoint WHERE projector = $1 FOR UPDATE", PROJECTOR
        )
        position = checkpoint["global_position"]
        rows = await conn.fetch(
            "SELECT global_position, event_id::text AS event_id, event_type, stream_id, business_time, payload"
            " FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
            position,
            page_size,
        )
        if not rows:
            return Progress(position, 0)
        page = [Row(**dict(r)) for r in rows]
        ops, index = [], []
        for row in page:
            ops.extend(projection_ops(row))
            index.extend(index_ops(row))
        await _run_ops(conn, ops)
        # Index rows are independent of each other: grouped by statement, one round trip each.
        index.sort(key=lambda op: op[0])
        await _run_ops(conn, index)
        last = page[-1].global_position
        latest = max(row.business_time for row in page)
        await conn.execute(
            "UPDATE finance.checkpoint SET global_position = $1,"
            " as_of = CASE WHEN as_of IS NULL OR as_of < $2 THEN $2 ELSE as_of END WHERE projector = $3",
            last,
            latest,
            PROJECTOR,
        )
        return Progress(last, len(page))


async def catch_up(conn: asyncpg.Connection, page_size: int = PAGE_SIZE) -> Progress:
    """Apply pages until the log's head; returns the final position and events applied."""
    total = 0
    while True:
        progress = await project_page(conn, page_size)
        total += progress.applied
        if progress.applied < page_size:
            return Progress(progress.position, total)


async def rebuild(conn: asyncpg.Connection, page_size: int = PAGE_SIZE) -> Progress:
    """Truncate every projection and replay from position 0 (A.REPLAY)."""
    async with conn.transaction():
        await conn.fetchrow("SELECT 1 FROM finance.checkpoint WHERE projector = $1 FOR UPDATE", PROJECTOR)
        tables = ", ".join(f"finance.{name}" for name, _ in PROJECTION_TABLES)
        await conn.execute(f"TRUNCATE {tables}")
        await conn.execute(
            "UPDATE finance.checkpoint SET global_position = 0, as_of = NULL WHERE projector = $1", PROJECTOR
        )
    return await catch_up(conn, page_size)


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
