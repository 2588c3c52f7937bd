"""Unique claims read and made by deciders (migrations 0003_unique_claims.sql and 0010_claims_on_decisions.sql).

A decider names a claim among the streams an input reads, as `claim:<key>`; its state is the
value recorded by the first decision that made the claim, or None. The decider says which claims
a stored decision makes (`claims_made`). The first rides on the decision itself (`events.claim_key`
and `claim_value`, migration 0010), so a claim costs no row of its own; any further one is a row
of `unique_claim_rows`, written in the same transaction. The view `unique_claims` lists both. Two
writers racing for one key meet a unique index, and the batch retries like any concurrency
conflict.
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
            "unique_claim_rows", columns=("service", "claim_key", "value", "position"),
            records=[(service, key, value, position) for key, value, position in rows],
        )
