"""The input envelope shared by every topic (TMF688-like), the decoded event, and the DLQ message."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
