"""Producers' side of the contract: an input event serialized, and proved to decode.

Beside envelope, registry and validation rather than in one of them, which each import the others' names.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from marshmallow import Schema, fields

from .envelope import EnvelopeSchema
from .errors import ENVELOPE_INVALID, PAYLOAD_INVALID, InvalidEvent
from .registry import CURRENT_SCHEMA_VERSION, payload_schema
from .validation import decode_event

_ENVELOPE = EnvelopeSchema()


def encode_event(
    event_type: str,
    payload: dict[str, Any],
    *,
    event_id: Any,
    event_time: datetime | str,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> bytes:
    """Serialize an input event for producers (sample data, tests) and prove it decodes.

    Raises InvalidEvent exactly as a consumer would, so nothing invalid is ever published.
    """
    schema = payload_schema(event_type)
    # dump() silently drops keys it does not know; a producer typo must fail instead.
    unknown = sorted(_unknown_paths(schema, payload, "payload"))
    if unknown:
        raise InvalidEvent(PAYLOAD_INVALID, "unknown field(s): " + ", ".join(unknown[:10]), tuple(unknown))
    try:
        dumped = schema.dump(payload)
        orjson.dumps(dumped)
    except (TypeError, ValueError, AttributeError) as exc:  # e.g. an object orjson cannot write
        raise InvalidEvent(PAYLOAD_INVALID, f"payload could not be serialized ({type(exc).__name__})") from exc
    envelope = {
        "eventId": str(event_id),
        "eventType": event_type,
        "schemaVersion": CURRENT_SCHEMA_VERSION[event_type],
        "eventTime": event_time,
        "source": source,
        "correlationId": correlation_id,
        "causationId": causation_id,
        "payload": dumped,
    }
    try:
        data = orjson.dumps(_ENVELOPE.dump(envelope))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEvent(ENVELOPE_INVALID, f"envelope could not be serialized ({type(exc).__name__})") from exc
    decode_event(event_type, data)
    return data


def _unknown_paths(schema: Schema, data: Any, path: str) -> list[str]:
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        declared = schema.fields.get(key)
        if declared is None:
            found.append(f"{path}.{key}")
            continue
        inner = declared.inner if isinstance(declared, fields.List) else declared
        if isinstance(inner, fields.Nested):
            items = value if isinstance(declared, fields.List) and isinstance(value, list) else [value]
            for index, item in enumerate(items):
                sub = f"{path}.{key}[{index}]" if isinstance(declared, fields.List) else f"{path}.{key}"
                found.extend(_unknown_paths(inner.schema, item, sub))
    return found
