"""Append-only, hash-chained event store on Postgres (asyncpg).

Appends take one transaction-scoped advisory lock, so global positions are handed out
in commit order and the chain head is extended by one writer at a time. Callers batch:
one lock and one COPY per batch of decisions, not per event.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import asyncpg
import orjson

from .chain import GENESIS_HASH, chain_link
from .records import NewEvent, StoredEvent

APPEND_LOCK = 7_700_002

COLUMNS = (
    "global_position", "stream_id", "stream_version", "event_id", "event_type",
    "schema_version", "service", "business_time", "causation_id", "correlation_id",
    "payload", "prev_hash", "hash",
)
SELECT_COLUMNS = (
    "global_position, stream_id, stream_version, event_id::text AS event_id, event_type, "
    "schema_version, service, business_time, recorded_at, causation_id, correlation_id, "
    "payload, prev_hash, hash"
)


class ConcurrencyConflict(Exception):
    """Another writer appended to one of the streams first; reload and decide again."""


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs every store connection needs: jsonb as Python objects via orjson.

    Binary format (a version byte, then the JSON text) so COPY can carry jsonb too.
    """
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda data: orjson.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


def _stored(record: asyncpg.Record) -> StoredEvent:
    return StoredEvent(**dict(record))


def seal(events: Iterable[NewEvent], after_position: int, prev_hash: bytes,
         versions: dict[str, int]) -> Iterator[StoredEvent]:
    """The events as the log stores them, in this order: the next positions after
    `after_position`, the next version of each stream (`versions` holds the current ones and is
    advanced), and each one's link in the hash chain. The one sealing the store's append and
    the bench's bulk load both use."""
    for event in events:
        after_position += 1
        version = versions[event.stream_id] = versions.get(event.stream_id, 0) + 1
        link = chain_link(prev_hash, after_position, version, event)
        yield StoredEvent(
            global_position=after_position,
            stream_id=event.stream_id,
            stream_version=version,
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            service=event.service,
            business_time=event.business_time,
            recorded_at=None,  # set by the database
            causation_id=event.causation_id,
            correlation_id=event.correlation_id,
            payload=event.payload,
            prev_hash=prev_hash,
            hash=link,
        )
        prev_hash = link


def row(e: StoredEvent) -> tuple:
    """A sealed event as the COLUMNS of `events`."""
    return (e.global_position, e.stream_id, e.stream_version, e.event_id, e.event_type, e.schema_version, e.service,
            e.business_time, e.causation_id, e.correlation_id, e.payload, e.prev_hash, e.hash)


async def append(
    conn: asyncpg.Connection,
    appends: Sequence[tuple[int, Sequence[NewEvent]]],
    read_versions: dict[str, int] | None = None,
) -> list[StoredEvent]:
    """Append events to streams inside the caller's transaction.

    `appends` holds (expected current version of the stream, events for that stream) per
    stream. `read_versions` holds the versions of streams the decisions were based on but
    that get no events (a tariff catalogue, an account with nothing to decide): another
    writer may not have moved them either. Raises ConcurrencyConflict when any stream has
    moved on since it was read.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append must run inside a transaction")
    writing = any(events for _, events in appends)
    if not writing and not read_versions:
        return []
    # Held to commit: appends are serialised, so positions follow commit order and the
    # version check below cannot race another writer.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
    if read_versions:
        rows = await conn.fetch(
            "SELECT stream_id, max(stream_version) AS version FROM events"
            " WHERE stream_id = ANY($1::text[]) GROUP BY stream_id",
            list(read_versions),
        )
        current = {r["stream_id"]: r["version"] for r in rows}
        moved = sum(1 for stream, version in read_versions.items() if current.get(stream, 0) != version)
        if moved:
            raise ConcurrencyConflict(f"{moved} stream(s) read for this batch moved on")
    if not writing:
        return []
    head = await conn.fetchrow("SELECT global_position, hash FROM event_chain_head")
    position, prev = (head["global_position"], bytes(head["hash"])) if head else (0, GENESIS_HASH)
    stored: list[StoredEvent] = []
    for expected_version, events in appends:
        # Each (expected version, events) is checked on its own, even two for one stream.
        stored += seal(events, position, prev, {e.stream_id: expected_version for e in events[:1]})
        if stored:
            position, prev = stored[-1].global_position, stored[-1].hash
    try:
        await conn.copy_records_to_table("events", columns=COLUMNS, records=map(row, stored))
    except asyncpg.UniqueViolationError as exc:
        # The constraint only: the error's detail quotes the conflicting values.
        raise ConcurrencyConflict(f"unique constraint {exc.constraint_name} refused the append") from exc
    await conn.execute(
        "INSERT INTO event_chain_head (singleton, global_position, hash) VALUES (true, $1, $2)"
        " ON CONFLICT (singleton) DO UPDATE SET global_position = $1, hash = $2",
        position,
        prev,
    )
    return stored


async def read_stream(conn: asyncpg.Connection, stream_id: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version",
        stream_id,
    )
    return [_stored(r) for r in rows]


async def read_streams(conn: asyncpg.Connection, stream_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
    rows = await conn.fetch(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[])"
        " ORDER BY stream_id, stream_version",
        list(stream_ids),
    )
    out: dict[str, list[StoredEvent]] = {s: [] for s in stream_ids}
    for row in rows:
        out[row["stream_id"]].append(_stored(row))
    return out


async def read_all(
    conn: asyncpg.Connection, after_position: int, limit: int, service: str | None = None
) -> list[StoredEvent]:
    if service is None:
        rows = await conn.fetch(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE global_position > $1"
            " ORDER BY global_position LIMIT $2",
            after_position,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE service = $3 AND global_position > $1"
            " ORDER BY global_position LIMIT $2",
            after_position,
            limit,
            service,
        )
    return [_stored(r) for r in rows]
