"""Stored decisions counted by type and outcome, as the bench reports them for (b) both ways."""
from __future__ import annotations

import asyncpg


async def decisions_by_type(conn: asyncpg.Connection, service: str) -> dict[str, int]:
    """{"<decision type>/<outcome>": count} over the service's stored decisions, largest first."""
    rows = await conn.fetch("SELECT event_type, payload->>'outcome' AS outcome, count(*) FROM events"
                            " WHERE service = $1 GROUP BY 1, 2 ORDER BY 3 DESC", service)
    return {f"{r['event_type']}/{r['outcome']}": r["count"] for r in rows}
