"""Decode and check input events; build dead letters for the ones that fail.

decode_event() is the only way a service turns Kafka bytes into an event. It raises
InvalidEvent and nothing else, whatever the bytes, so a consumer can dead-letter and go on.
Error messages name field paths but never field values: values may be phone numbers or
other personal data, and messages end up in logs and on DLQ topics (A.PRIVACY).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from marshmallow import ValidationError

from .envelope import DeadLetterSchema, EnvelopeSchema, InputEvent
from .errors import (
    DEFAULT_MAX_EVENT_BYTES, DUPLICATE_KEY, ENVELOPE_INVALID, EVENT_TOO_LARGE, InvalidEvent, KEY_MISMATCH,
    MALFORMED_JSON, NOT_AN_OBJECT, PAYLOAD_INVALID, PROCESSING_ERROR, TOPIC_MISMATCH,
    UNSUPPORTED_SCHEMA_VERSION,
)
from .fastload import compiled_or_none
from .registry import INPUT_TOPICS, SUPPORTED_SCHEMA_VERSIONS, partition_key_field, payload_schema

_MAX_LISTED_ERRORS = 10
# Unknown keys are echoed only when they look like a field name: a key can carry data too.
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{4}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}")


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


def decode_message(topic: str, key: bytes | None, value: bytes | None,
                   max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> InputEvent:
    """decode_event for a whole Kafka record: its size (CONTRACT.SIZE) and its key, which must be
    the event's partition key (CONTRACT.KEY), are part of the contract too."""
    if value is not None and len(value) > max_event_bytes:
        raise InvalidEvent(EVENT_TOO_LARGE, f"value is {len(value)} bytes; the contract allows at most {max_event_bytes}")
    event = decode_event(topic, value)
    field = partition_key_field(topic, event.payload)
    if key is None or bytes(key) != str(event.payload[field]).encode():
        raise InvalidEvent(KEY_MISMATCH, f"the Kafka key {'is missing' if key is None else 'differs'};"
                                         f" it must equal payload.{field}", (f"payload.{field}",))
    return event


def decode_event_reference(topic: str, value: bytes) -> InputEvent:
    """decode_event through marshmallow alone: the oracle the compiled loaders are tested
    and benchmarked against (tests/unit/test_fast_decode.py, bench/decode.py)."""
    schema = payload_schema(topic)
    return _checked_decode(topic, schema, _parse(value))


def _parse(value: bytes) -> dict[str, Any]:
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("number"):
            raise InvalidEvent(MALFORMED_JSON, f"number out of range at char {exc.pos}: numbers must fit"
                                               " a 64-bit integer or double") from None
        raise InvalidEvent(MALFORMED_JSON, f"value is not valid UTF-8 JSON (error at char {exc.pos})") from None
    except (TypeError, ValueError, RecursionError):  # not bytes at all, e.g. a None tombstone
        raise InvalidEvent(MALFORMED_JSON, f"value is not JSON bytes ({type(value).__name__})") from None
    if type(raw) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, f"top-level JSON value is {_json_type(raw)}, not an object")
    # orjson keeps the last of two equal keys. Compact JSON that re-encodes to the very same
    # bytes cannot hold a duplicate, so only other spellings pay for the strict second parse.
    if not _reencodes_to(raw, value):
        _refuse_duplicate_keys(value)
    return raw


def _reencodes_to(raw: dict[str, Any], value: bytes) -> bool:
    try:
        return orjson.dumps(raw) == value
    except TypeError:  # orjson encodes less deeply nested JSON than it decodes
        return False


def _refuse_duplicate_keys(value: bytes) -> None:
    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            key = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise InvalidEvent(DUPLICATE_KEY, f"key {_safe_key(key)!r} appears twice in one object;"
                                              " the contract refuses duplicate keys", (_safe_key(key),))
        return obj

    try:
        json.loads(value, object_pairs_hook=pairs_to_dict)
    except InvalidEvent:
        raise
    except RecursionError:
        raise InvalidEvent(MALFORMED_JSON, "nesting too deep to check for duplicate keys (the contract's"
                                           " events nest a few levels)") from None
    except Exception:  # orjson accepted it; a quirk of the stdlib parser is no reason to refuse
        return


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


# What a dead letter may weigh, by default: under Kafka's default message.max.bytes (1 MiB
# plus record overhead), so a letter for any input the broker accepted can be sent back.
DEFAULT_DEAD_LETTER_MAX_BYTES = 1_000_000
_KEY_MAX_CHARS = 1_000


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
    failed_at: datetime,
    consumer: str,
    max_bytes: int = DEFAULT_DEAD_LETTER_MAX_BYTES,
) -> bytes:
    """The message for `<topic>.dlq`: the input, a value-free reason, and the original's size
    and SHA-256; never more than `max_bytes` (CONTRACT.DLQ_FITS).

    The original goes in verbatim when it fits; otherwise its start, with `truncated` set.
    Escaping can double a value (a string of quotes) or make it six times longer (control
    characters), so the cut is found by encoding, not by counting input bytes.

    `error` is an InvalidEvent, or any exception: one with string attributes `code` (and
    `message`) keeps them, e.g. a service's CP3.SANITY rejection; any other is reported by
    its class name only, since exception texts often quote the data that broke them.
    """
    if not isinstance(failed_at, datetime) or failed_at.utcoffset() is None:
        raise ValueError("failed_at must be an aware datetime")
    code, message = _error_parts(error)
    data = None if value is None else bytes(value)
    text, encoding = _value_text(data)
    letter = {
        "error": {"code": code, "message": message},
        "originalTopic": topic,
        "partition": partition,
        "offset": offset,
        "key": None if key is None else _key_text(key),
        "value": text,
        "valueEncoding": encoding,
        "failedAt": failed_at.isoformat(),
        "consumer": consumer,
        "originalSize": 0 if data is None else len(data),
        "originalSha256": None if data is None else hashlib.sha256(data).hexdigest(),
        "truncated": False,
    }
    try:
        validate_dead_letter(letter)
    except InvalidEvent as exc:  # a caller bug (bad topic, negative offset): fail loudly
        raise ValueError(exc.message) from None
    body = orjson.dumps(letter)
    if len(body) <= max_bytes or data is None:
        return body
    return _truncated(letter, data, encoding, max_bytes)


def _truncated(letter: dict[str, Any], data: bytes, encoding: str, max_bytes: int) -> bytes:
    letter["truncated"] = True
    letter["value"] = ""
    room = max_bytes - len(orjson.dumps(letter))
    if room < 0:
        raise ValueError(f"max_bytes={max_bytes} leaves no room for the dead letter's own fields")
    keep = len(data)
    while True:
        # Each pass scales the cut by how much the encoded value overshot the room left.
        letter["value"] = _prefix_text(data, keep, encoding)
        size = len(orjson.dumps(letter["value"])) - 2
        if size <= room:
            return orjson.dumps(letter)
        keep = min(keep - 1, int(keep * room / size))


def _key_text(key: bytes) -> str:
    return bytes(key).decode("utf-8", "replace").replace("\x00", "\ufffd")[:_KEY_MAX_CHARS]


def _prefix_text(data: bytes, keep: int, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(data[:keep]).decode("ascii")
    # The whole value is valid UTF-8, so only a character cut in half at the end is dropped.
    return data[:keep].decode("utf-8", "ignore")


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


def _value_text(data: bytes | None) -> tuple[str | None, str]:
    if data is None:
        return None, "utf8"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"
    if "\x00" in text:  # valid UTF-8, but NUL cannot be stored in Postgres text/jsonb
        return base64.b64encode(data).decode("ascii"), "base64"
    return text, "utf8"
