"""Decode and check input events; build dead letters for the ones that fail.

decode_event() is the only way a service turns Kafka bytes into an event. It raises
InvalidEvent and nothing else, whatever the bytes, so a consumer can dead-letter and go on.
Error messages name field paths but never field values: values may be phone numbers or
other personal data, and messages end up in logs and on DLQ topics (A.PRIVACY).
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from marshmallow import ValidationError

from .envelope import DeadLetterSchema, EnvelopeSchema, InputEvent
from .fastload import compiled_or_none
from .registry import INPUT_TOPICS, SUPPORTED_SCHEMA_VERSIONS, payload_schema

MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
ENVELOPE_INVALID = "envelope_invalid"
UNKNOWN_TOPIC = "unknown_topic"
TOPIC_MISMATCH = "topic_mismatch"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
PAYLOAD_INVALID = "payload_invalid"
ERROR_CODES = frozenset(
    {MALFORMED_JSON, NOT_AN_OBJECT, ENVELOPE_INVALID, UNKNOWN_TOPIC, TOPIC_MISMATCH,
     UNSUPPORTED_SCHEMA_VERSION, PAYLOAD_INVALID}
)
# Code used in a dead letter for an exception that carries no code of its own.
PROCESSING_ERROR = "processing_error"

_MAX_LISTED_ERRORS = 10
# Unknown keys are echoed only when they look like a field name: a key can carry data too.
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{4}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}")


class InvalidEvent(Exception):
    """An input that breaks the contract. `code` is one of ERROR_CODES; `message` names the
    offending field paths (also in `fields`) and never contains field values."""

    def __init__(self, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields


_ENVELOPE = EnvelopeSchema()
_DEAD_LETTER = DeadLetterSchema()
# Compiled once at import from the very schema objects above (schemas/fastload.py). A topic
# whose schema cannot be compiled is simply absent, and decoded by marshmallow alone.
_FAST_ENVELOPE = compiled_or_none(_ENVELOPE)
_FAST_PAYLOAD = {} if _FAST_ENVELOPE is None else {
    topic: loader for topic in INPUT_TOPICS if (loader := compiled_or_none(payload_schema(topic))) is not None
}


def decode_event(topic: str, value: bytes) -> InputEvent:
    """Parse and validate one Kafka value consumed from `topic`."""
    schema = payload_schema(topic)
    raw = _parse(value)
    event = _fast_decode(topic, raw)
    return _checked_decode(topic, schema, raw) if event is None else event


def decode_event_reference(topic: str, value: bytes) -> InputEvent:
    """decode_event through marshmallow alone: the oracle the compiled loaders are tested
    and benchmarked against (tests/unit/test_fast_decode.py, bench/decode.py)."""
    schema = payload_schema(topic)
    return _checked_decode(topic, schema, _parse(value))


def _parse(value: bytes) -> dict[str, Any]:
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(MALFORMED_JSON, f"value is not valid UTF-8 JSON (error at char {exc.pos})") from None
    except (TypeError, ValueError, RecursionError):  # not bytes at all, e.g. a None tombstone
        raise InvalidEvent(MALFORMED_JSON, f"value is not JSON bytes ({type(value).__name__})") from None
    if type(raw) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, f"top-level JSON value is {_json_type(raw)}, not an object")
    return raw


def _fast_decode(topic: str, raw: dict[str, Any]) -> InputEvent | None:
    """The event, from the compiled loaders; None when they cannot vouch for it."""
    load_payload = _FAST_PAYLOAD.get(topic)
    if load_payload is None:
        return None
    try:
        envelope = _FAST_ENVELOPE(raw)
        version = envelope["schemaVersion"]
        if envelope["eventType"] != topic or version not in SUPPORTED_SCHEMA_VERSIONS[topic]:
            return None
        payload = load_payload(envelope["payload"])
    except Exception:  # Defer, or anything unforeseen: marshmallow decides either way
        return None
    return _event(topic, envelope, payload, raw)


def _checked_decode(topic: str, schema: Any, raw: dict[str, Any]) -> InputEvent:
    envelope = _load(_ENVELOPE, raw, ENVELOPE_INVALID, "")
    if envelope["eventType"] != topic:
        raise InvalidEvent(TOPIC_MISMATCH, f"eventType does not equal the topic {topic!r}", ("eventType",))
    version = envelope["schemaVersion"]
    supported = SUPPORTED_SCHEMA_VERSIONS[topic]
    if version not in supported:
        raise InvalidEvent(
            UNSUPPORTED_SCHEMA_VERSION,
            f"schemaVersion {version} is not supported on {topic} (supported: {sorted(supported)})",
            ("schemaVersion",),
        )
    payload = _load(schema, envelope["payload"], PAYLOAD_INVALID, "payload")
    return _event(topic, envelope, payload, raw)


def _event(topic: str, envelope: dict[str, Any], payload: dict[str, Any], raw: dict[str, Any]) -> InputEvent:
    return InputEvent(
        event_id=envelope["eventId"],
        event_type=topic,
        schema_version=envelope["schemaVersion"],
        event_time=envelope["eventTime"],
        source=envelope["source"],
        correlation_id=envelope["correlationId"],
        causation_id=envelope["causationId"],
        payload=payload,
        raw=raw,
    )


def _load(schema: Any, data: Any, code: str, prefix: str) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise invalid_from_messages(code, exc.messages, prefix) from None
    except Exception as exc:
        # Defensive: a field that crashes on some odd value must still dead-letter the input
        # rather than stop the consumer. The contract tests fuzz for this and expect none.
        raise InvalidEvent(code, f"{prefix or 'envelope'} could not be validated ({type(exc).__name__})") from exc


def invalid_from_messages(code: str, messages: Any, prefix: str = "") -> InvalidEvent:
    """An InvalidEvent listing marshmallow's errors as `path: message` pairs."""
    pairs = list(_flatten(messages, prefix))
    shown = "; ".join(f"{path or '(root)'}: {text}" for path, text in pairs[:_MAX_LISTED_ERRORS])
    if len(pairs) > _MAX_LISTED_ERRORS:
        shown += f"; (+{len(pairs) - _MAX_LISTED_ERRORS} more)"
    paths = tuple(dict.fromkeys(path or "(root)" for path, _ in pairs))
    return InvalidEvent(code, shown, paths)


def _flatten(messages: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, sub in messages.items():
            if key == "_schema":
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{_safe_key(key)}" if path else _safe_key(key)
            yield from _flatten(sub, child)
    elif isinstance(messages, list):
        for item in messages:
            yield from _flatten(item, path)
    else:
        yield path, str(messages)


def _safe_key(key: Any) -> str:
    text = str(key)
    if _SAFE_KEY.fullmatch(text) and not _DIGIT_RUN.search(text):
        return text
    return "<unnamed key>"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def content_hash(raw: dict[str, Any]) -> str:
    """sha256 hex of the envelope's canonical JSON (sorted keys), for "same id, other content"."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
    failed_at: datetime,
    consumer: str | None = None,
) -> bytes:
    """The message for `<topic>.dlq`: the input verbatim plus a value-free reason.

    `error` is an InvalidEvent, or any exception: one with string attributes `code` (and
    `message`) keeps them, e.g. a service's CP3.SANITY rejection; any other is reported by
    its class name only, since exception texts often quote the data that broke them.
    """
    if not isinstance(failed_at, datetime) or failed_at.utcoffset() is None:
        raise ValueError("failed_at must be an aware datetime")
    code, message = _error_parts(error)
    text, encoding = _value_text(value)
    letter = {
        "error": {"code": code, "message": message},
        "originalTopic": topic,
        "partition": partition,
        "offset": offset,
        "key": None if key is None else bytes(key).decode("utf-8", "replace").replace("\x00", "\ufffd"),
        "value": text,
        "valueEncoding": encoding,
        "failedAt": failed_at.isoformat(),
    }
    if consumer is not None:
        letter["consumer"] = consumer
    try:
        validate_dead_letter(letter)
    except InvalidEvent as exc:  # a caller bug (bad topic, negative offset): fail loudly
        raise ValueError(exc.message) from None
    return orjson.dumps(letter)


def validate_dead_letter(obj: dict[str, Any]) -> None:
    """Raise InvalidEvent(envelope_invalid) unless `obj` is a valid DLQ message."""
    if type(obj) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, "dead letter is not an object")
    try:
        _DEAD_LETTER.load(obj)
    except ValidationError as exc:
        raise invalid_from_messages(ENVELOPE_INVALID, exc.messages) from None


def _error_parts(error: BaseException) -> tuple[str, str]:
    if isinstance(error, InvalidEvent):
        return error.code, error.message
    generic = f"{type(error).__name__} while processing the event (details in the service log)"
    code = getattr(error, "code", None)
    if not (isinstance(code, str) and _CODE.fullmatch(code)):
        return PROCESSING_ERROR, generic
    # Only an exception that opted in with a string code is trusted to have a value-free message.
    message = getattr(error, "message", None)
    if not (isinstance(message, str) and message.strip()):
        message = generic
    return code, message.replace("\x00", "\ufffd")[:500]


def _value_text(value: bytes | None) -> tuple[str | None, str]:
    if value is None:
        return None, "utf8"
    data = bytes(value)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"
    if "\x00" in text:  # valid UTF-8, but NUL cannot be stored in Postgres text/jsonb
        return base64.b64encode(data).decode("ascii"), "base64"
    return text, "utf8"
