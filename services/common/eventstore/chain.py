"""The hash chain over the whole log (A.TAMPER_EVIDENT).

Each event's hash covers its position, identity, content and the previous event's hash,
so changing, removing or reordering any row breaks every link after it.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson

GENESIS_HASH = bytes(32)


def _utc(moment: datetime) -> str:
    """moment.astimezone(timezone.utc).isoformat(timespec="microseconds"), 40% faster.

    orjson writes a UTC datetime exactly as isoformat() does, except that it leaves out a zero
    microsecond, which the chain's text always carries: it is put back after the seconds.
    """
    in_utc = moment.astimezone(timezone.utc)
    text = orjson.dumps(in_utc)[1:-1].decode()
    return text if in_utc.microsecond else f"{text[:19]}.000000{text[19:]}"


def chain_link(prev_hash: bytes, global_position: int, stream_version: int, event) -> bytes:
    """The link of `event` (a NewEvent, or anything with its fields) stored at that position and
    version: the store seals events before it builds their StoredEvent (verify hashes the rows it
    reads with entry_of)."""
    return link_of(prev_hash, chain_entry(global_position, stream_version, event))


def link_of(prev_hash: bytes, entry: bytes) -> bytes:
    """The link after `prev_hash` of the event whose chain_entry is `entry`."""
    return hashlib.sha256(prev_hash + entry).digest()


# What chain_entry writes, in its order: how an inclusion proof names the fields of its entry.
ENTRY_FIELDS = ("globalPosition", "streamId", "streamVersion", "eventId", "eventType", "schemaVersion", "service",
                "businessTime", "causationId", "correlationId", "payload")


def chain_entry(global_position: int, stream_version: int, event) -> bytes:
    """The bytes of one event that its link hashes (after the previous link): what an inclusion
    proof hands an auditor, who hashes them again."""
    return entry_of((global_position, event.stream_id, stream_version, str(event.event_id), event.event_type,
                     event.schema_version, event.service, event.business_time, event.causation_id,
                     event.correlation_id, event.payload))


def entry_of(values) -> bytes:
    """chain_entry of the values of ENTRY_FIELDS in their order (a sequence whose first eleven
    items they are, the event id as text and the business time a datetime): how a walk hashes a
    row it read with those columns first, without building an event of it."""
    return orjson.dumps(
        [values[0], values[1], values[2], values[3], values[4], values[5], values[6], _utc(values[7]), values[8],
         values[9], values[10]],
        option=orjson.OPT_SORT_KEYS,
    )
