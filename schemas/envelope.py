"""The input envelope shared by every topic (TMF688-like), the decoded event, and the DLQ message."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from marshmallow import Schema, fields

from .fields import Bool, Choice, FreeObject, Id, Int, Matching, Name, Object, StrictSchema, Text, Timestamp, Uuid

class EnvelopeSchema(StrictSchema):
    """Envelope of every input event; `payload` is checked afterwards by the topic's schema."""

    eventId = Uuid("Unique id of the event; a redelivery keeps it, a different content must not.")
    eventType = Id("Must equal the topic the event is published on, e.g. billing.cdr.v1.")
    schemaVersion = Int("Version of the payload schema within the topic (currently 1).", minimum=1)
    eventTime = Timestamp("Business time of the event (not the time it was sent).")
    source = Id("Id of the upstream system that produced the event.")
    correlationId = Id("Id shared by all events of one business flow.", optional=True)
    causationId = Id("Id of the event or command that caused this one.", optional=True)
    payload = FreeObject("Topic-specific payload.")


@dataclass(frozen=True, slots=True)
class InputEvent:
    """A decoded, contract-valid input event.

    payload keeps the wire's camelCase keys; times are aware datetimes, Money stays
    {"amountMinor": int, "currency": str}, omitted optional fields are present as None.
    payload and raw are left out of repr: they may hold personal data (A.PRIVACY).
    """

    event_id: str
    event_type: str
    schema_version: int
    event_time: datetime
    source: str
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)


class ErrorSchema(StrictSchema):
    """Why an input was dead-lettered. The message names field paths, never field values."""

    code = Id("Machine-readable code: an InvalidEvent code or a service reason such as CP3.SANITY.")
    message = Text("Human-readable explanation without personal data.")


class DeadLetterSchema(StrictSchema):
    """Message on `<input topic>.dlq`: the rejected input, verbatim, with the reason."""

    error = Object(ErrorSchema)
    originalTopic = Name("Topic the input was consumed from.", max_length=249)
    partition = Int(minimum=0)
    offset = Int(minimum=0)
    key = Text("Kafka key, decoded as UTF-8 with replacement characters; null when absent.",
               required=True, allow_none=True, min_length=0, max_length=None)
    value = Text("Original value: the text itself when it is UTF-8 without NUL, else base64; "
                 "null for a record without value.",
                 required=True, allow_none=True, min_length=0, max_length=None)
    valueEncoding = Choice(("utf8", "base64"))
    failedAt = Timestamp("When the consumer gave up on the input.")
    consumer = Id("The service that refused the input: a topic read by two services yields one"
                  " letter from each, told apart by this field and the wuguan-consumer header.")
    originalSize = Int("Size of the original value in bytes (0 for a record without value).", minimum=0)
    originalSha256 = Matching(r"[0-9a-f]{64}", "64 lower-case hex digits",
                              "SHA-256 of the original value, hex; null for a record without value.",
                              required=True, allow_none=True)
    truncated = Bool("True when `value` holds only the start of the original, so that the letter"
                     " fits the broker's message limit. The whole original stays in the"
                     " service's dead_lettered_inputs table and at originalTopic/partition/offset.")


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
    # Imported here: validation and registry import this module.
    from .registry import CURRENT_SCHEMA_VERSION, payload_schema
    from .validation import ENVELOPE_INVALID, PAYLOAD_INVALID, InvalidEvent, decode_event

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
