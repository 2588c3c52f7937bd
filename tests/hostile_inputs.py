"""Hostile Kafka records for every input topic, generated from the published JSON Schemas.

Valid events come from schemas/json/<topic>.schema.json through hypothesis-jsonschema; hypothesis
then mutates them in the ways issue 19 lists: wrong types, missing and extra fields, nesting
100,000 deep, 10**400, NaN and Infinity, duplicate keys with conflicting values, NUL bytes,
lone surrogates and non-UTF-8, empty and tombstone values, a key that is not the account, far
past and far future times, zero, negative and fractional money, and events at and just over
the size limit. Each case says which dead-letter codes the contract allows for it (VALID:
the contract may accept it, and then it must be decided).

Used by tests/e2e/test_generated_inputs.py (every topic, through the running workers) and by
`make fuzz` (the same with WUGUAN_FUZZ_CASES cases).
"""
from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from schemas.registry import partition_key
from schemas.errors import (
    DEFAULT_MAX_EVENT_BYTES, DUPLICATE_KEY, ENVELOPE_INVALID, EVENT_TOO_LARGE, KEY_MISMATCH, MALFORMED_JSON,
    NOT_AN_OBJECT, PAYLOAD_INVALID, TOPIC_MISMATCH, InvalidEvent,
)
from schemas.validation import decode_event

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "json"
VALID = "valid"  # in Case.allowed: the contract may accept the event, and then it must be decided
ONLY_VALID = frozenset({VALID})
SHAPE = frozenset({ENVELOPE_INVALID, PAYLOAD_INVALID, TOPIC_MISMATCH})
UNPARSABLE = frozenset({MALFORMED_JSON})
FAR_TIMES = ("0001-01-01T00:00:00+08:00", "1899-12-31T23:59:59Z", "9999-12-31T23:59:59+08:00",
             "2100-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class Case:
    topic: str
    label: str
    key: bytes | None
    value: bytes | None
    allowed: frozenset[str]  # the dead-letter codes the contract allows for it, and/or VALID


def _inline(node, defs):
    """The schema with its local $refs inlined. `format` goes too: each one the contract uses
    is also a `pattern`, and generating for both at once is tens of times slower."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k not in ("$defs", "$id", "$schema", "format")}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


@lru_cache(maxsize=None)
def schema_of(topic: str) -> dict:
    published = json.loads((SCHEMAS / f"{topic}.schema.json").read_text())
    return _inline(published, published.get("$defs", {}))


def _collect(strategy, n: int) -> list:
    found: list = []

    @settings(max_examples=n, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value):
        found.append(value)

    collect()
    return found


@lru_cache(maxsize=None)
def valid_bases(topic: str, n: int = 8) -> tuple[bytes, ...]:
    """Distinct schema-generated events of the topic that the contract accepts, as JSON. The
    ones dropped name a day that does not exist (2024-02-31): `format` was left out above."""
    generated = dict.fromkeys(orjson.dumps(doc) for doc in _collect(from_schema(schema_of(topic)), n))
    bases = tuple(text for text in generated if _accepted(topic, text))
    if not bases:
        raise AssertionError(f"no generated {topic} event is valid: the schema and the decoder disagree")
    return bases


def _accepted(topic: str, text: bytes) -> bool:
    try:
        decode_event(topic, text)
    except InvalidEvent:
        return False
    return True


def leaves(value, path=()):
    """Every (path, leaf) of a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))
    else:
        yield path, value


def set_at(doc, path, value):
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


_EVENT_IDS = itertools.count(1)


def _fresh(topic: str, base: bytes, data) -> dict:
    """A base event with an eventId of its own: two cases never share one by accident (a drawn
    id would, and a reused eventId is a case of its own: duplicate_event_id)."""
    doc = orjson.loads(base)
    doc["eventId"] = str(uuid.UUID(int=next(_EVENT_IDS) * 0x9E3779B97F4A7C15 % 2**128, version=4))
    return doc


def _key(topic: str, doc: dict) -> bytes:
    return str(partition_key(topic, doc["payload"])).encode()


def _pick(data, items, label):
    return items[data.draw(st.integers(0, len(items) - 1), label=label)]


def _placeholder(doc: dict, path: tuple, literal: bytes) -> bytes:
    """The event's JSON with the leaf at `path` replaced by raw `literal` bytes."""
    marker = "\u0001MARK\u0001"
    set_at(doc, path, marker)
    return orjson.dumps(doc).replace(orjson.dumps(marker), literal)


def mutate(topic: str, base: bytes, data, max_event_bytes: int) -> Case:
    doc = _fresh(topic, base, data)
    key = _key(topic, doc)
    label = data.draw(st.sampled_from(WEIGHTED_MUTATIONS), label="mutation")
    value, key, allowed = MUTATIONS[label](topic, doc, key, data, max_event_bytes)
    if value is not None and len(value) > max_event_bytes:  # the size is checked before the content
        allowed = frozenset({EVENT_TOO_LARGE})
    return Case(topic, label, key, value, allowed)


def _wrong_type(topic, doc, key, data, _):
    path, leaf = _pick(data, list(leaves(doc["payload"])), "leaf")
    others = {str: [12345, ["list"], {"obj": 1}, True], int: ["12", [1], {"n": 1}], float: ["1.5", [1.5]],
              bool: ["true", 1, [True]], type(None): [[None], {"x": None}, 12.5]}
    set_at(doc["payload"], path, _pick(data, others.get(type(leaf), [["x"]]), "replacement"))
    return orjson.dumps(doc), key, SHAPE


def _missing_field(topic, doc, key, data, _):
    schema = schema_of(topic)
    required = [f for f in schema["required"] if f in doc]
    payload_required = [f for f in schema["properties"]["payload"].get("required", ()) if f in doc["payload"]]
    where, name = _pick(data, [("envelope", f) for f in required] + [("payload", f) for f in payload_required], "field")
    del (doc if where == "envelope" else doc["payload"])[name]
    return orjson.dumps(doc), key, SHAPE


def _extra_field(topic, doc, key, data, _):
    target = doc if data.draw(st.booleans(), label="in envelope") else doc["payload"]
    target[_pick(data, ["unexpected", "fuzzExtra", "note_2", "x"], "name")] = _pick(data, [1, "x", None, {"a": 1}], "v")
    return orjson.dumps(doc), key, SHAPE


def _deep_nesting(topic, doc, key, data, _):
    depth = 100_000
    set_at(doc, ("payload",), "\u0001")
    return orjson.dumps(doc).replace(b'"\\u0001"', b"[" * depth + b"]" * depth), key, UNPARSABLE


def _huge_integer(topic, doc, key, data, _):
    numbers = [p for p, v in leaves(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)] or [("eventId",)]
    return _placeholder(doc, _pick(data, numbers, "number"), b"1" + b"0" * 400), key, UNPARSABLE


def _nan_infinity(topic, doc, key, data, _):
    path, _leaf = _pick(data, list(leaves(doc["payload"])), "leaf")
    return _placeholder(doc, ("payload",) + path, _pick(data, [b"NaN", b"Infinity", b"-Infinity"], "literal")), key, \
        UNPARSABLE


def _duplicate_key(topic, doc, key, data, _):
    """The same key twice in one object, with another value first: a parser keeping the last one
    would decide something else than one keeping the first."""
    in_payload = data.draw(st.booleans(), label="in payload")
    target = doc["payload"] if in_payload else doc
    name = _pick(data, sorted(target), "key")
    decoy = orjson.dumps(name) + b":" + orjson.dumps(_pick(data, ["decoy", 0, None, {"x": 1}], "decoy")) + b","
    text = orjson.dumps(doc)
    anchor = b'"payload":{' if in_payload else b"{"
    return text.replace(anchor, anchor + decoy, 1), key, frozenset({DUPLICATE_KEY})


def _null_byte(topic, doc, key, data, _):
    strings = [p for p, v in leaves(doc) if isinstance(v, str)]
    path = _pick(data, strings, "string")
    leaf = doc
    for part in path:
        leaf = leaf[part]
    set_at(doc, path, leaf[:3] + "\u0000" + leaf[3:])
    return orjson.dumps(doc), key, SHAPE


def _lone_surrogate(topic, doc, key, data, _):
    strings = [p for p, v in leaves(doc) if isinstance(v, str)]
    return _placeholder(doc, _pick(data, strings, "string"), b'"ab\\ud800cd"'), key, UNPARSABLE


def _non_utf8(topic, doc, key, data, _):
    strings = [p for p, v in leaves(doc) if isinstance(v, str)]
    return _placeholder(doc, _pick(data, strings, "string"), b'"\xff\xfe\xc3\x28"'), key, UNPARSABLE


def _empty_or_tombstone(topic, doc, key, data, _):
    value = _pick(data, [b"", None, b"   ", b"null", b"[]"], "value")
    return value, key, (NOT_AN_OBJECT_OR_UNPARSABLE if value in (b"null", b"[]") else UNPARSABLE)


def _wrong_key(topic, doc, key, data, _):
    other = _pick(data, [None, b"", b"someone-else", key + b"-x", key.lower() + b"\xff"], "key")
    return orjson.dumps(doc), other, frozenset({KEY_MISMATCH})


def _far_time(topic, doc, key, data, _):
    times = [p for p, v in leaves(doc) if isinstance(v, str) and len(v) >= 20 and v[4:5] == "-" and v[10:11] in "Tt"]
    path = _pick(data, times, "time")
    set_at(doc, path, _pick(data, list(FAR_TIMES), "when"))
    return orjson.dumps(doc), key, SHAPE


def _odd_money(topic, doc, key, data, _):
    amounts = [p for p, v in leaves(doc["payload"]) if p and p[-1] == "amountMinor"]
    if not amounts:
        return _far_time(topic, doc, key, data, _)
    amount = _pick(data, [0, -1, -10**6, 1.5, 0.01, -0.5], "amount")
    set_at(doc["payload"], _pick(data, amounts, "money"), amount)
    # Fractional fen is never valid; zero and negative amounts are a rule's business, not the shape's.
    return orjson.dumps(doc), key, (SHAPE if isinstance(amount, float) else SHAPE | ONLY_VALID)


def _at_size_limit(topic, doc, key, data, max_event_bytes):
    """Padded with JSON whitespace, which changes no field: exactly at the limit is valid, one
    byte more is not."""
    over = data.draw(st.booleans(), label="over")
    text = orjson.dumps(doc)
    size = max_event_bytes + (1 if over else 0)
    value = text[:-1] + b" " * (size - len(text)) + b"}"
    return value, key, (frozenset({EVENT_TOO_LARGE}) if over else ONLY_VALID)


NOT_AN_OBJECT_OR_UNPARSABLE = frozenset({NOT_AN_OBJECT, MALFORMED_JSON})

MUTATIONS = {
    "wrong_type": _wrong_type, "missing_field": _missing_field, "extra_field": _extra_field,
    "deep_nesting": _deep_nesting, "huge_integer": _huge_integer, "nan_infinity": _nan_infinity,
    "duplicate_key": _duplicate_key, "null_byte": _null_byte, "lone_surrogate": _lone_surrogate,
    "non_utf8": _non_utf8, "empty_or_tombstone": _empty_or_tombstone, "wrong_key": _wrong_key,
    "far_time": _far_time, "odd_money": _odd_money, "size_limit": _at_size_limit,
}
# The two heavy mutations (hundreds of kB each) a third as often as the others.
WEIGHTED_MUTATIONS = tuple(sorted(
    label for label in MUTATIONS for _ in range(1 if label in ("size_limit", "deep_nesting") else 3)))


def cases(topic: str, n: int, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> list[Case]:
    """n hostile cases of the topic, each followed by a valid event half of the time, in a
    fixed order for a given n (derandomized): the same run every time."""
    bases = valid_bases(topic)

    @st.composite
    def one(draw):
        data = _Draws(draw)
        base = _pick(data, list(bases), "base")
        case = mutate(topic, base, data, max_event_bytes)
        if not data.draw(st.booleans(), label="valid after"):
            return [case]
        doc = _fresh(topic, _pick(data, list(bases), "valid base"), data)
        return [case, Case(topic, "valid", _key(topic, doc), orjson.dumps(doc), ONLY_VALID)]

    return [c for group in _collect(one(), n) for c in group]


class _Draws:
    """Lets the mutations call data.draw(...) inside a composite strategy."""

    def __init__(self, draw):
        self.draw = draw
