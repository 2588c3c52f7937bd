"""What a refused input is told: the error codes of the contract and the one exception that carries them.

A module of its own so that every part of schemas (envelope, registry, validation, decision) can
raise and name them without importing each other.
"""
from __future__ import annotations

MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
ENVELOPE_INVALID = "envelope_invalid"
UNKNOWN_TOPIC = "unknown_topic"
TOPIC_MISMATCH = "topic_mismatch"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
PAYLOAD_INVALID = "payload_invalid"
DUPLICATE_KEY = "duplicate_key"
EVENT_TOO_LARGE = "event_too_large"
KEY_MISMATCH = "key_mismatch"
ERROR_CODES = frozenset(
    {MALFORMED_JSON, NOT_AN_OBJECT, ENVELOPE_INVALID, UNKNOWN_TOPIC, TOPIC_MISMATCH,
     UNSUPPORTED_SCHEMA_VERSION, PAYLOAD_INVALID, DUPLICATE_KEY, EVENT_TOO_LARGE, KEY_MISMATCH}
)
# The contract's largest event value (CONTRACT.SIZE): bigger ones are dead-lettered unread.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
# Code used in a dead letter for an exception that carries no code of its own.
PROCESSING_ERROR = "processing_error"


class InvalidEvent(Exception):
    """An input that breaks the contract. `code` is one of ERROR_CODES; `message` names the
    offending field paths (also in `fields`) and never contains field values."""

    def __init__(self, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields
