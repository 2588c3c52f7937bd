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
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: bytes,
    *,
    global_position: int,
    stream_id: str,
    stream_version: int,
    event_id: str,
    event_type: str,
    schema_version: int,
    service: str,
    business_time: datetime,
    causation_id: str | None,
    correlation_id: str | None,
    payload: dict,
) -> bytes:
    body = orjson.dumps(
        [
            global_position,
            stream_id,
            stream_version,
            str(event_id),
            event_type,
            schema_version,
            service,
            _utc(business_time),
            causation_id,
            correlation_id,
            payload,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash + body).digest()
