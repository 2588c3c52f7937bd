"""Unique claims read and made by deciders (see migrations/0003_unique_claims.sql).

A decider names a claim among the streams an input reads, as `claim:<key>`; its state is the
value recorded by the first decision that made the claim, or None. The decider says which claims
a stored decision makes (`claims_made`); they are inserted in the same transaction. Two writers
racing for one key meet the primary key, and the batch retries like any concurrency conflict.
"""
from __future__ import annotations

import asyncpg

PREFIX = "claim:"


def claim_id(key: str) -> str:
    return PREFIX + key


def is_claim(stream_id: str) -> bool:
    return stream_id.startswith(PREFIX)


async def load_claims(conn: asyncpg.Connection, service: str, claim_ids: list[str]) -> dict[str, str | None]:
    keys = [c[len(PREFIX):] for c in claim_ids]
    rows = await conn.fetch(
        "SELECT claim_key, value FROM unique_claims WHERE service = $1 AND claim_key = ANY($2::text[])", service, keys
    )
    found = {r["claim_key"]: r["value"] for r in rows}
    return {claim_id(key): found.get(key) for key in keys}


async def record_claims(conn: asyncpg.Connection, service: str, rows: list[tuple[str, str, int]]) -> None:
    """rows: (key, value, position of the decision that made the claim)."""
    if rows:
        await conn.copy_records_to_table(
            "unique_claims", columns=("service", "claim_key", "value", "position"),
            records=[(service, key, value, position) for key, value, position in rows],
        )
