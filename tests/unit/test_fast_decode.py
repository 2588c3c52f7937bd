"""The compiled loaders (schemas/fastload.py) against marshmallow: a differential test.

decode_event answers from loaders compiled out of the marshmallow schemas and falls back to
marshmallow (decode_event_reference) whenever they cannot vouch for an input. The property
pinned here: whenever the compiled path answers, marshmallow gives the identical InputEvent
(same keys in the same order, same types, same datetimes and offsets); and decode_event and
the reference agree on every input, valid or not (same event, or same code, message, fields).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

import schemas
from schemas import validation
from schemas.envelope import EnvelopeSchema, InputEvent
from schemas.fastload import Unsupported, compile_loader, compiled_or_none
from schemas.fields import ContractInteger, ContractString, StrictBoolean, Timestamp
from schemas.registry import INPUT_TOPICS, payload_schema
from schemas.errors import InvalidEvent
from schemas.validation import decode_event, decode_event_reference

from .contract_strategies import any_event, event

EXAMPLES = Path(schemas.__file__).resolve().parent / "examples"
INPUT_EXAMPLES = sorted(p for p in EXAMPLES.glob("*/*.json") if p.parent.name in INPUT_TOPICS)
SEEDS = [(p.parent.name, orjson.loads(p.read_bytes())) for p in INPUT_EXAMPLES]
DELETE = object()


def _all_choices() -> list[str]:
    """Every enumerated value of every contract: swapping them drives the conditional rules."""
    found: set[str] = set()

    def visit(schema: Schema) -> None:
        for field in schema.load_fields.values():
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested):
                visit(inner.schema)
            for check in inner.validators:
                if isinstance(check, validate.OneOf):
                    found.update(check.choices)

    for topic in INPUT_TOPICS:
        visit(payload_schema(topic))
    return sorted(found)


# Near misses and oddities for any position: wrong types, bool-as-int, float-as-int, 64-bit
# edges and beyond, negative money, whitespace, odd unicode, every shape of time.
ADVERSARIAL: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, -0.0, 86.5, 1e300, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30,
    10**12, 10**12 + 1, -(10**12), "", " ", "\t", "ACC-1 ", " ACC-1", "ACC-1\n", "ACC 1", "13800001234\n",
    "１３８００００１２３４", "١٣٨٠٠٠٠١٢٣٤", "广东", "粤通管备[2024]12号", "\u202eRTL\u202c 名字", "\u200f\u200e\u2066x\u2069",
    "𝔘𝔫𝔦 😀", "e\u0301\u0301", "\ufeff\u2028\ufffd", "a\x00b", "x\x7f", "A" * 64, "A" * 65, "x" * 500, "x" * 501,
    "3F2B8C1E-6D4A-4E7B-9A1C-0B5D7E9F2A41", "3f2b8c1e-6d4a-4e7b-9a1c-0b5d7e9f2a41",
    "2024-05-06T14:01:02+08:00", "2024-05-06T14:01:02", "2024-05-06 14:01:02+08:00", "2024-05-06t14:01:02z",
    "2024-05-06T14:01:02.123456789+08:00", "2024-05-06T14:01:02.1-00:00", "2024-05-06T14:01:60+08:00",
    "2024-02-30T00:00:00+08:00", "2024-02-29T00:00:00+08:00", "2023-02-29T00:00:00+08:00",
    "2099-12-31T23:59:59.999999+23:59", "2199-01-01T00:00:00+08:00", "9999-12-31T23:59:59+23:59",
    "1999-12-31T23:59:59Z", "2024-05-06T24:00:00Z", "2024-05-06T14:01:02+24:00", "20240506T140102+0800",
    "2024-05-06", "24:00", "00:00", "23:59", "8:00", "CNY", "cny", "USD", "1", "true", "null",
    [], [None], [1], ["A"], ["A", "A"], [{}], {}, {"a": 1}, {"amountMinor": 1, "currency": "CNY"},
    {"amountMinor": -1, "currency": "CNY"}, {"amountMinor": 1.0, "currency": "CNY"},
    {"amountMinor": 1, "currency": "CNY", "yuan": 0.01}, {"amountMinor": True, "currency": "CNY"},
    *_all_choices(),
]


# --- comparison --------------------------------------------------------------------------------


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two loaded values differ, strictly (types, key order, offsets), or None."""
    if type(a) is not type(b):
        return f"{path or '(root)'}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, InputEvent):
        for f in dataclasses.fields(InputEvent):
            found = difference(getattr(a, f.name), getattr(b, f.name), f.name)
            if found:
                return found
        return None
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            found = difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(a, datetime):
        same = (a.isoformat() == b.isoformat() and type(a.tzinfo) is type(b.tzinfo)
                and a.tzinfo == b.tzinfo and a.fold == b.fold)
        return None if same else f"{path}: {a.isoformat()} != {b.isoformat()}"
    if isinstance(a, float):
        return None if repr(a) == repr(b) else f"{path}: {a!r} != {b!r}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def outcome(decode: Any, topic: str, value: Any) -> Any:
    try:
        return decode(topic, value)
    except InvalidEvent as err:
        return ("InvalidEvent", err.code, err.message, err.fields)


def agree(topic: str, value: Any) -> str:
    """Assert decode_event and the marshmallow reference agree on `value`; return which path
    answered: "fast", "fallback" (valid, but the compiled loaders deferred) or the error code."""
    reference = outcome(decode_event_reference, topic, value)
    served = outcome(decode_event, topic, value)
    found = difference(served, reference)
    assert found is None, f"decode_event and the reference differ at {found}"
    try:
        raw = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        raw = None
    if type(raw) is not dict:
        return reference[1] if isinstance(reference, tuple) else "fallback"
    fast = validation._fast_decode(topic, raw)
    if fast is None:
        return reference[1] if isinstance(reference, tuple) else "fallback"
    # The heart of it: the compiled path only ever answers what marshmallow answers.
    assert isinstance(reference, InputEvent), f"compiled path accepted what marshmallow refuses: {reference}"
    found = difference(fast, reference)
    assert found is None, f"compiled path and marshmallow differ at {found}"
    # marshmallow builds new lists and dicts; a service mutating its payload must not be
    # able to change the raw envelope (hashed, dead-lettered) through a shared one.
    assert not containers(fast.payload) & containers(fast.raw), "payload shares a list or dict with raw"
    return "fast"


def containers(value: Any) -> set[int]:
    """ids of every list and dict within a JSON value."""
    if isinstance(value, dict):
        return {id(value)}.union(*(containers(v) for v in value.values()))
    if isinstance(value, list):
        return {id(value)}.union(*(containers(v) for v in value))
    return set()


# --- every contract compiles -------------------------------------------------------------------


@pytest.mark.parametrize("topic", sorted(INPUT_TOPICS))
def test_every_input_contract_compiles(topic: str) -> None:
    # Unsupported here means a contract now uses something schemas/fastload.py does not
    # mirror: the topic still decodes correctly, through marshmallow alone, but slowly.
    compile_loader(payload_schema(topic))
    assert topic in validation._FAST_PAYLOAD
    assert validation._FAST_ENVELOPE is not None


@pytest.mark.parametrize("path", INPUT_EXAMPLES, ids=[f"{p.parent.name}/{p.stem}" for p in INPUT_EXAMPLES])
def test_examples_take_the_compiled_path(path: Path) -> None:
    assert agree(path.parent.name, path.read_bytes()) == "fast"


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(generated=any_event())
def test_generated_valid_events_take_the_compiled_path(generated: tuple[str, dict[str, Any]]) -> None:
    topic, envelope = generated
    assert agree(topic, orjson.dumps(envelope)) == "fast"


@pytest.mark.parametrize("topic", sorted(INPUT_TOPICS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_valid_events_per_topic(topic: str, data: st.DataObject) -> None:
    # any_event() may draw some topics rarely; this gives each its own share.
    assert agree(topic, orjson.dumps(data.draw(event(topic)))) == "fast"


# --- mutated and adversarial inputs ------------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path below a JSON value (dict keys and list indexes)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, sub in items:
        found.append((*prefix, key))
        found.extend(paths(sub, (*prefix, key)))
    return found


def dict_paths(value: Any) -> list[tuple[Any, ...]]:
    return [()] + [p for p in paths(value) if isinstance(_at(value, p), dict)]


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    parent = _at(doc, path[:-1])
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@pytest.mark.parametrize("seed", range(len(SEEDS)), ids=[f"{t}/{p.stem}" for (t, _), p in zip(SEEDS, INPUT_EXAMPLES)])
def test_every_position_with_every_adversarial_value(seed: int) -> None:
    """Each example, with each of its values replaced by each adversarial value in turn,
    deleted, or joined by an extra key: both paths must agree on every one."""
    topic, original = SEEDS[seed]
    seen: dict[str, int] = {}
    for path in paths(original):
        for replacement in [*ADVERSARIAL, DELETE]:
            doc = copy.deepcopy(original)
            _put(doc, path, replacement)
            label = agree(topic, json.dumps(doc).encode())
            seen[label] = seen.get(label, 0) + 1
    for path in dict_paths(original):
        for extra in ("unexpected", "msisdn", "\u202ex", "13800001234"):
            doc = copy.deepcopy(original)
            _at(doc, path)[extra] = "surplus"
            agree(topic, json.dumps(doc).encode())
    # Some replacements keep the event valid (another choice, other text): those must have
    # been answered by the compiled path, or it is not being tested at all.
    assert seen.get("fast", 0) > 0 and seen.get("fallback", 0) == 0, seen


ADVERSARIAL_VALUES = st.sampled_from(ADVERSARIAL) | st.integers() | st.floats() | st.text(max_size=70) | st.none()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    topic, doc = draw(st.sampled_from(SEEDS) | any_event())
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(doc)
        how = draw(st.sampled_from(["replace", "delete", "extra", "grow", "retopic"]))
        if how == "retopic":
            doc["eventType"] = draw(st.sampled_from(sorted(INPUT_TOPICS)))
            doc["schemaVersion"] = draw(st.sampled_from([1, 1, 2, 0, True, 1.0, "1"]))
        elif how == "extra":
            target = _at(doc, draw(st.sampled_from(dict_paths(doc))))
            target[draw(st.text(max_size=10))] = draw(ADVERSARIAL_VALUES)
        elif where:
            path = draw(st.sampled_from(where))
            if how == "replace":
                _put(doc, path, draw(ADVERSARIAL_VALUES))
            elif how == "delete":
                _put(doc, path, DELETE)
            elif isinstance(_at(doc, path), list):  # grow: past list bounds, or empty
                _put(doc, path, _at(doc, path) * draw(st.sampled_from([0, 2, 49, 201, 1001])))
    # stdlib json writes NaN and integers beyond 64 bits, which orjson refuses: more fuzz.
    return topic, json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_events_agree(case: tuple[str, bytes]) -> None:
    agree(*case)


@pytest.mark.parametrize("value", [b"", b"{", b"[]", b"null", b"\xff", None, 12345, b'{"a": NaN}', b"1" + b"0" * 400])
def test_not_json_objects_agree(value: Any) -> None:
    agree("billing.cdr.v1", value)


def test_unknown_topic_is_refused_before_anything_else() -> None:
    assert agree("billing.cdr.v9", (EXAMPLES / "billing.cdr.v1" / "online-voice-domestic.json").read_bytes()) == "unknown_topic"


def test_a_topic_without_compiled_loader_still_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    value = (EXAMPLES / "billing.cdr.v1" / "online-voice-domestic.json").read_bytes()
    expected = decode_event_reference("billing.cdr.v1", value)
    monkeypatch.setattr(validation, "_FAST_PAYLOAD", {})
    assert difference(decode_event("billing.cdr.v1", value), expected) is None


# --- the compiler on its own: features the contracts use today, and some they may tomorrow ----


class Inner(Schema):
    n = ContractInteger(required=True, validate=validate.Range(min=0, max=10, max_inclusive=False))


def not_bad(value: str) -> bool:
    return value != "bad"


class Features(Schema):
    renamed = ContractString(data_key="wireName", attribute="attrName", required=True, validate=validate.Length(equal=3))
    omitted = ContractString()  # neither required nor defaulted: absent stays absent
    counted = ContractInteger(load_default=lambda: 7)
    flag = StrictBoolean(load_default=False)
    tags = fields.List(fields.Nested(Inner), validate=[validate.Length(max=3), lambda items: len(items) != 2])
    words = fields.List(ContractString(validate=not_bad, allow_none=True), load_default=None, allow_none=True)
    inner = fields.Nested(Inner, allow_none=True, load_default=None)
    blob = fields.Dict(required=True)
    word = ContractString(validate=validate.OneOf(["a", 1, "b"]))
    when = Timestamp(optional=True)
    low = ContractInteger(validate=validate.Range(min=-5, min_inclusive=False))

    @validates_schema(pass_original=True)
    def _flag_needs_omitted(self, data: dict[str, Any], original: dict[str, Any], **kwargs: Any) -> None:
        if data.get("flag") and "omitted" not in original:
            raise ValidationError("flag needs omitted")


FEATURE_VALUES = {
    "wireName": st.sampled_from(["abc", "ab", "abcd", 3, None]),
    "omitted": st.sampled_from(["x", "", None, 1]),
    "counted": st.sampled_from([0, -3, True, 1.0, None]),
    "flag": st.sampled_from([True, False, 0, None]),
    "tags": st.lists(st.fixed_dictionaries({"n": st.sampled_from([0, 9, 10, -1, True])}), max_size=4) | st.none(),
    "words": st.lists(st.sampled_from(["ok", "bad", None, 5]), max_size=3) | st.none(),
    "inner": st.none() | st.fixed_dictionaries({"n": st.sampled_from([0, 5, 10])}) | st.just({"n": 1, "m": 2}),
    "blob": st.sampled_from([{}, {"k": [1]}, [], None]),
    "word": st.sampled_from(["a", "b", "c", 1, None]),
    "when": st.sampled_from(["2024-05-06T14:01:02+08:00", "2024-05-06T14:01:02", None, 5]),
    "low": st.sampled_from([-5, -4, 100, None]),
    "attrName": st.just("abc"),  # the attribute name is not a wire key: unknown
}


@settings(max_examples=600, deadline=None)
@given(data=st.fixed_dictionaries({}, optional=FEATURE_VALUES))
def test_compiled_loader_equals_schema_load(data: dict[str, Any]) -> None:
    schema = Features()
    loader = compile_loader(schema)
    try:
        expected = schema.load(copy.deepcopy(data))
    except ValidationError:
        expected = None
    try:
        got = loader(copy.deepcopy(data))
    except Exception:
        return  # deferring is always allowed
    assert expected is not None, f"compiled loader accepted what marshmallow refuses: {data}"
    assert difference(got, expected) is None, difference(got, expected)


def test_compiled_loader_answers_valid_feature_data() -> None:
    loader = compile_loader(Features())
    data = {"wireName": "abc", "omitted": "x", "flag": True, "tags": [{"n": 1}], "blob": {"k": 1}, "word": "a",
            "low": -4}
    loaded = loader(data)
    assert loaded == Features().load(data)
    assert "omitted" in loaded and "attrName" in loaded and loaded["counted"] == 7
    del data["omitted"], data["flag"]
    assert "omitted" not in loader(data)
    assert loaded["blob"] is not data["blob"]  # a copy, as marshmallow returns


class CustomString(fields.String):
    pass


class WithPreLoad(Schema):
    a = ContractString()

    @pre_load
    def _strip(self, data: Any, **kwargs: Any) -> Any:
        return data


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE

    a = ContractString()


@pytest.mark.parametrize("schema", [
    Schema.from_dict({"a": CustomString()})(),
    Schema.from_dict({"a": fields.Integer()})(),
    Schema.from_dict({"a": fields.Nested(Inner, many=True)})(),
    Schema.from_dict({"a": ContractString(attribute="x.y")})(),
    Schema.from_dict({"a": ContractString(pre_load=[str.strip])})(),
    WithPreLoad(),
    Lenient(),
], ids=["custom-field", "non-strict-int", "nested-many", "dotted-attribute", "field-pre-load", "pre-load-hook",
        "unknown-exclude"])
def test_what_is_not_mirrored_is_refused_at_compile_time(schema: Schema) -> None:
    with pytest.raises(Unsupported):
        compile_loader(schema)
    assert compiled_or_none(schema) is None


def test_generated_source_is_readable() -> None:
    source = validation._FAST_PAYLOAD["billing.cdr.v1"].source
    assert "def load_CdrPayload" in source and "parse_rfc3339" in source
    assert compile_loader(EnvelopeSchema()).source.startswith("def load_EnvelopeSchema")
