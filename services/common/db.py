"""Postgres connections for the services: jsonb codecs, and the append-only role."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from .eventstore.store import init_connection


class _OneLineFloorFailures(logging.Filter):
    """asyncpg logs a whole traceback each second it fails to reopen its pool's minimum of
    connections, i.e. every second of a Postgres outage that the worker waits out by design
    (CONTRACT.NOTHING_LOST). One line naming the exception class says as much; and a line with
    only the class cannot quote data (A.PRIVACY)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLineFloorFailures())


# asyncpg prepares every statement, and after five runs Postgres may keep a generic plan made
# while a table was nearly empty: the processed-inputs lookup (`event_id = ANY($2)`) then stays a
# sequential scan, comparing every row with every id of the batch, and each batch gets slower as
# the table grows. Batches run a handful of statements, so planning each with the current table
# size costs far less than one such scan.
# JIT off: every query here reads a page or a batch. Per-row subplans (the arrears list's reminder
# counts) push estimates past jit_above_cost, and compiling then took ~11 ms of a 25 ms query.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}


def _server_settings(role: str | None) -> dict:
    return {**SERVER_SETTINGS, **({"role": role} if role else {})}


async def create_pool(database_url: str, *, role: str | None, min_size: int = 1, max_size: int = 4,
                      session_state: bool = True) -> asyncpg.Pool:
    """`session_state=False`: the pool's borrowers leave nothing in the session (settings are SET
    LOCAL, advisory locks are a transaction's, nothing LISTENs), so a connection goes back to the
    pool without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL): a round
    trip and ~0.6 ms of the server's per release, which a worker pays twice a batch (8 % of the
    guard's rate in process at 40 inputs a batch). asyncpg still rolls back a transaction left open."""
    # The role is a startup parameter rather than a SET ROLE, so the pool's RESET ALL
    # between borrowers returns to it instead of to the login user.
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings=_server_settings(role),
        **({} if session_state else {"reset": _nothing_to_reset}),
    )


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    return None


async def connect(database_url: str, *, role: str | None = None) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url, server_settings=_server_settings(role))
    await init_connection(conn)
    return conn


@contextlib.asynccontextmanager
async def connection(database_url: str, *, role: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection like connect's, closed however the block ends: a command's one connection."""
    conn = await connect(database_url, role=role)
    try:
        yield conn
    finally:
        await conn.close()
