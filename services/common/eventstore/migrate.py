"""Applies the SQL migrations in order, once each, safely from several processes at once."""
from __future__ import annotations

from importlib import resources

import asyncpg

MIGRATION_LOCK = 7_700_001  # advisory lock key: one migrator at a time


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text()) for name in names]


async def migrate(conn: asyncpg.Connection, extra: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in _migration_files() + (extra or []):
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now
