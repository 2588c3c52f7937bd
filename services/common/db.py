"""Postgres connections for the services: jsonb codecs, and the append-only role."""
from __future__ import annotations

import asyncpg

from .eventstore.store import init_connection


async def create_pool(database_url: str, *, role: str | None, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    # The role is a startup parameter rather than a SET ROLE, so the pool's RESET ALL
    # between borrowers returns to it instead of to the login user.
    settings = {"role": role} if role else {}
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings=settings,
    )


async def connect(database_url: str, *, role: str | None = None) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url, server_settings={"role": role} if role else {})
    await init_connection(conn)
    return conn
