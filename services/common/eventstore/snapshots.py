"""Snapshot streams: a stream's state kept as one row, next to the events it decided.

A stream whose state changes with nearly every input but decides rarely (a switch's sequence
moves with every CDR; it decides only when a gap opens, closes or outlives its grace) would
otherwise store a decision per input only to rebuild its state. Its state is written instead, in
the transaction of the batch that changed it, with the stream's event version it includes.
Optimistic like the events: each write names the revision it read, and a row another writer
moved on since refuses it (ConcurrencyConflict), so the batch reloads and decides again.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg
import orjson

from .store import ConcurrencyConflict


class Snapshot(NamedTuple):
    version: int  # the stream's event version the state includes
    revision: int  # writes so far; 0: no row yet
    state: Any  # the codec's JSON form


async def load_snapshots(conn: asyncpg.Connection, service: str, stream_ids: Sequence[str]) -> dict[str, Snapshot]:
    """The snapshots of those streams that have one."""
    rows = await conn.fetch(
        "SELECT stream_id, version, revision, state::text AS state FROM stream_snapshots"
        " WHERE service = $1 AND stream_id = ANY($2::text[])", service, list(stream_ids))
    return {r["stream_id"]: Snapshot(r["version"], r["revision"], orjson.loads(r["state"])) for r in rows}


async def events_after(conn: asyncpg.Connection, versions: dict[str, int]) -> dict[str, list[tuple[int, Any]]]:
    """(version, payload) of each stream's events above the given version, in order: what a
    snapshot does not include when something appended to its stream without writing it (a
    worker of an older version during a rolling deploy, a repair by hand)."""
    rows = await conn.fetch(
        "SELECT e.stream_id, e.stream_version, e.payload FROM events e"
        " JOIN unnest($1::text[], $2::int[]) AS s(stream_id, version)"
        " ON e.stream_id = s.stream_id AND e.stream_version > s.version ORDER BY e.stream_id, e.stream_version",
        list(versions), list(versions.values()))
    later: dict[str, list[tuple[int, Any]]] = {}
    for r in rows:
        later.setdefault(r["stream_id"], []).append((r["stream_version"], r["payload"]))
    return later


async def write_snapshots(conn: asyncpg.Connection, service: str,
                          written: Sequence[tuple[str, int, int, Any]]) -> None:
    """(stream, version, revision read, state) per stream, each stored as the next revision.
    Raises ConcurrencyConflict when another writer moved any of them on since it was read."""
    if not written:
        return
    stored = await conn.fetch(
        "INSERT INTO stream_snapshots AS s (service, stream_id, version, revision, state)"
        " SELECT $1, u.stream_id, u.version, u.revision + 1, u.state::jsonb"
        " FROM unnest($2::text[], $3::int[], $4::bigint[], $5::text[]) AS u(stream_id, version, revision, state)"
        " ON CONFLICT (service, stream_id) DO UPDATE"
        " SET version = EXCLUDED.version, revision = EXCLUDED.revision, state = EXCLUDED.state"
        " WHERE s.revision = EXCLUDED.revision - 1 RETURNING stream_id",
        service, [w[0] for w in written], [w[1] for w in written], [w[2] for w in written],
        [orjson.dumps(w[3]).decode() for w in written])
    if len(stored) < len(written):
        raise ConcurrencyConflict(f"{len(written) - len(stored)} snapshot(s) moved on since they were read")


async def check_snapshots(conn: asyncpg.Connection, service: str, read: dict[str, int]) -> None:
    """Snapshots read but not written (stream -> revision read) may not have moved either."""
    if not read:
        return
    rows = await conn.fetch(
        "SELECT stream_id, revision FROM stream_snapshots WHERE service = $1 AND stream_id = ANY($2::text[])",
        service, list(read))
    current = {r["stream_id"]: r["revision"] for r in rows}
    if any(current.get(stream, 0) != revision for stream, revision in read.items()):
        raise ConcurrencyConflict("a snapshot read for this batch moved on")
