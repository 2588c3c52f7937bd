"""Bulk-loads decision envelopes into an empty `events` table with COPY, as the store's own
append would have written them: positions in the given order, stream versions counted per
stream, and the real hash chain (services.common.eventstore.chain), and the unique claims the
decisions make (services/common/runtime/claims.py), so `wuguan verify` passes on the result.
One transaction: a failed load leaves no half store.
"""
from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from services.billing_guard.decider import GuardDecider
from services.common.eventstore.chain import GENESIS_HASH
from services.common.eventstore.records import NewEvent
from services.common.eventstore.store import COLUMNS, row, seal
from services.common.timefmt import parse_rfc3339


def stored_rows(decisions: Iterable[dict], versions: dict[str, int] | None = None):
    """(columns of `events`) per decision, sealed as the store's append seals them; the runtime's
    NewEvent mapping (batch_processor: event id = decision id, causation = the input, business
    time as decided)."""
    events = (NewEvent(event_id=d["decisionId"], stream_id=d["streamId"], event_type=d["decisionType"],
                       service=d["service"], business_time=parse_rfc3339(d["businessTime"]), payload=d,
                       causation_id=d["causedBy"][0] if d["causedBy"] else None,
                       correlation_id=d.get("correlationId"))
              for d in decisions)
    return map(row, seal(events, 0, GENESIS_HASH, {} if versions is None else versions))


CLAIMS_MADE = {GuardDecider.service: GuardDecider().claims_made}


async def load(conn: asyncpg.Connection, decisions: Iterable[dict]) -> int:
    """COPY every decision into `events` (which must be empty); returns how many."""
    last: list = []
    claims: list[tuple] = []

    def rows():
        for record in stored_rows(decisions):
            yield record
            last[:] = record
            decision = record[10]
            made = CLAIMS_MADE.get(decision["service"])
            if made is not None:
                claims.extend((decision["service"], key, value, record[0]) for key, value in made(decision))

    async with conn.transaction():
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events)"):
            raise RuntimeError("the event store is not empty: load into a fresh database")
        # One COPY, fed as the rows are made: Postgres stores (and indexes) while Python generates.
        await conn.copy_records_to_table("events", columns=COLUMNS, records=rows())
        if not last:
            return 0
        await conn.copy_records_to_table("unique_claims", columns=("service", "claim_key", "value", "position"),
                                         records=claims)
        await conn.execute(
            "INSERT INTO event_chain_head (singleton, global_position, hash) VALUES (true, $1, $2)"
            " ON CONFLICT (singleton) DO UPDATE SET global_position = $1, hash = $2", last[0], last[-1])
        return last[0]
