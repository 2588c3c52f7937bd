"""Bulk-loads decision envelopes into an empty `events` table with COPY, as the store's own
append would have written them: positions in the given order, stream versions counted per
stream, the real hash chain (services.common.eventstore.chain), and the unique claim each
decision makes on its row (services/common/runtime/claims.py), so `wuguan verify` passes on the result.
One transaction: a failed load leaves no half store.
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import count

import asyncpg

from services.billing_guard.decider import GuardDecider
from services.common.eventstore.records import NewEvent
from services.common.eventstore.store import (COLUMNS, RECORDS_APPENDS, appended_runs, chain_anchors, chain_genesis,
                                              record_appends, row, seal)
from services.common.timefmt import parse_rfc3339


class _Heads(dict):
    """chain -> [seq, hash], a new chain starting at its genesis."""

    def __missing__(self, chain: str) -> list:
        head = self[chain] = [0, chain_genesis(chain)]
        return head


CLAIMS_MADE = {GuardDecider.service: GuardDecider().claims_made}


def _claim(decision: dict) -> tuple[str | None, str | None]:
    """The claim a decision makes, carried by its row as the runtime stores it (claims.py)."""
    made = CLAIMS_MADE.get(decision["service"])
    claims = made(decision) if made is not None else []
    if len(claims) > 1:
        raise ValueError(f"{decision['decisionType']} makes {len(claims)} claims: the bench's writer stores one")
    return claims[0] if claims else (None, None)


def _new_event(d: dict) -> NewEvent:
    claim_key, claim_value = _claim(d)
    return NewEvent(event_id=d["decisionId"], stream_id=d["streamId"], event_type=d["decisionType"],
                    service=d["service"], business_time=parse_rfc3339(d["businessTime"]), payload=d,
                    causation_id=d["causedBy"][0] if d["causedBy"] else None, correlation_id=d.get("correlationId"),
                    chain_id=f"{d['service']}/bench", claim_key=claim_key, claim_value=claim_value)


def stored_rows(decisions: Iterable[dict], versions: dict[str, int] | None = None, heads: dict | None = None):
    """(columns of `events`) per decision, sealed as the store's append seals them, one chain per
    service (`<service>/bench`); the runtime's NewEvent mapping (batch_processor: event id =
    decision id, causation = the input, business time as decided, the claim it makes)."""
    events = map(_new_event, decisions)
    return map(row, seal(events, count(1), _Heads() if heads is None else heads, {} if versions is None else versions))


async def load(conn: asyncpg.Connection, decisions: Iterable[dict]) -> int:
    """COPY every decision into `events` (which must be empty); returns how many."""
    last: list = []
    heads = _Heads()

    placed: list[tuple[int, str]] = []
    chained: list[tuple[int, str, int]] = []

    def rows():
        for record in stored_rows(decisions, heads=heads):
            yield record
            placed.append((record[0], record[6]))  # position, service: the load's appends
            chained.append((record[0], record[13], record[14]))  # position, chain, seq: its anchors
            last[:] = record

    async with conn.transaction():
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events)"):
            raise RuntimeError("the event store is not empty: load into a fresh database")
        # One COPY, fed as the rows are made: Postgres stores (and indexes) while Python generates.
        await conn.execute(RECORDS_APPENDS)
        await conn.copy_records_to_table("events", columns=COLUMNS, records=rows())
        if not last:
            return 0
        await conn.executemany("INSERT INTO event_chains (chain_id, seq, hash) VALUES ($1, $2, $3)",
                               [(chain, seq, link) for chain, (seq, link) in heads.items()])
        await record_appends(conn, appended_runs(placed), chain_anchors(chained))
        await conn.execute("SELECT setval('events_position_seq', $1)", last[0])
        return last[0]
