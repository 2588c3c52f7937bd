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
from services.common.eventstore.chain import GENESIS_HASH, event_hash
from services.common.eventstore.records import StoredEvent
from services.common.eventstore.store import COLUMNS
from services.common.timefmt import parse_rfc3339


def stored_rows(decisions: Iterable[dict], versions: dict[str, int] | None = None):
    """(columns of `events`) per decision, chained; the runtime's NewEvent mapping
    (unit_of_work: event id = decision id, causation = the input, business time as decided)."""
    versions = {} if versions is None else versions
    prev, position = GENESIS_HASH, 0
    for decision in decisions:
        position += 1
        stream = decision["streamId"]
        version = versions[stream] = versions.get(stream, 0) + 1
        causes = decision["causedBy"]
        event = StoredEvent(position, stream, version, decision["decisionId"], decision["decisionType"], 1,
                            decision["service"], parse_rfc3339(decision["businessTime"]), None,
                            causes[0] if causes else None, decision.get("correlationId"), decision, prev, b"")
        sealed = event_hash(prev, event)
        yield (position, stream, version, event.event_id, event.event_type, 1, event.service, event.business_time,
               event.causation_id, event.correlation_id, decision, prev, sealed)
        prev = sealed


CLAIMS_MADE = {GuardDecider.service: GuardDecider().claims_made}


async def load(conn: asyncpg.Connection, decisions: Iterable[dict]) -> int:
    """COPY every decision into `events` (which must be empty); returns how many."""
    last: list = []
    claims: list[tuple] = []

    def rows():
        for row in stored_rows(decisions):
            yield row
            last[:] = row
            decision = row[10]
            made = CLAIMS_MADE.get(decision["service"])
            if made is not None:
                claims.extend((decision["service"], key, value, row[0]) for key, value in made(decision))

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
