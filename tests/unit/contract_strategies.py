"""Hypothesis strategies for valid input events, derived from the marshmallow contracts.

Walking the schemas (not restating them) keeps the generator in step with the contract: a new
field or bound is generated as soon as it is declared. Values favour the edges the contract
allows: bounds of ranges and lengths, any character a pattern admits (Chinese, RTL marks,
emoji in names and text), lowercase `t`/`z`, up to nine fractional digits, odd offsets.
"""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from marshmallow import Schema, fields, validate

from schemas.envelope import EnvelopeSchema
from schemas.fields import (
    BoundedList,
    ContractInteger,
    ContractString,
    Pattern,
    RFC3339DateTime,
    StrictBoolean,
)
from schemas.registry import INPUT_TOPICS, SUPPORTED_SCHEMA_VERSIONS, payload_schema

# Lists are generated short: long ones add time, not cases (their bounds are fuzzed apart).
MAX_GENERATED_ITEMS = 4
# Integers a producer can write with orjson (64-bit); bigger ones are adversarial input.
INT64 = 2**63 - 1


@functools.cache
def event(topic: str) -> st.SearchStrategy[dict[str, Any]]:
    """A contract-valid input envelope for `topic`, as a JSON-ready dict."""
    return obj(EnvelopeSchema(), {
        "eventType": st.just(topic),
        "schemaVersion": st.sampled_from(sorted(SUPPORTED_SCHEMA_VERSIONS[topic])),
        "payload": obj(payload_schema(topic)),
    })


@functools.cache
def any_event() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.sampled_from(sorted(INPUT_TOPICS)).flatmap(lambda topic: event(topic).map(lambda e: (topic, e)))


def obj(schema: Schema, overrides: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A valid object for `schema`: required fields, optional ones present, null or absent,
    and whatever its conditional rules (When) then require."""
    overrides = overrides or {}
    required, optional = {}, {}
    for name, field in schema.load_fields.items():
        strategy = overrides[name] if name in overrides else value(field)
        if field.required:
            required[name] = strategy
        else:
            optional[name] = strategy | st.none() if field.allow_none else strategy
    base = st.fixed_dictionaries(required, optional=optional)
    rules = getattr(schema, "conditional_required", ())
    if not rules:
        return base

    @st.composite
    def satisfied(draw: st.DrawFn) -> dict[str, Any]:
        data = draw(base)
        for _ in range(2):  # a rule's fill-in may trigger a later rule (resolution -> creditAmount)
            for rule in rules:
                if data.get(rule.field) in rule.values:
                    for name in rule.require:
                        if data.get(name) is None:
                            data[name] = draw(value(schema.load_fields[name]))
        return data

    return satisfied()


def value(field: fields.Field) -> st.SearchStrategy[Any]:
    """A valid, non-null JSON value for one field."""
    kind = type(field)
    if kind is ContractString:
        return _text_for(field)
    if kind is ContractInteger:
        return _integer(field)
    if kind is StrictBoolean:
        return st.booleans()
    if kind is RFC3339DateTime:
        return rfc3339()
    if kind is fields.Nested:
        return obj(field.schema)
    if kind in (fields.List, BoundedList):
        low, high = _length(field.validators)
        low = low or 0
        high = min(high if high is not None else MAX_GENERATED_ITEMS, low + MAX_GENERATED_ITEMS)
        return st.lists(value(field.inner), min_size=low, max_size=high)
    raise NotImplementedError(f"no strategy for {kind.__name__}; teach tests/unit/contract_strategies.py")


def _text_for(field: fields.Field) -> st.SearchStrategy[str]:
    checks = field.validators
    for check in checks:
        if type(check) is validate.OneOf:
            return st.sampled_from(list(check.choices))
        if type(check) is validate.Equal:
            return st.just(check.comparable)
    low, high = _length(checks)
    patterns = [check for check in checks if type(check) is Pattern]
    base = st.from_regex(patterns[0].regex, fullmatch=True) if patterns else st.text()
    if high and patterns and patterns[0].regex.endswith(("*$", "+$")):
        # An unbounded pattern rarely reaches the length bound by itself: repeat a drawn
        # value up to it, so maximum-length ids and names turn up.
        base = base | base.map(lambda s: (s * high)[:high])
    return base.filter(lambda s: (low is None or len(s) >= low) and (high is None or len(s) <= high)
                       and all(p._compiled.fullmatch(s) for p in patterns) and _utf8(s))


def _integer(field: fields.Field) -> st.SearchStrategy[int]:
    low, high = -INT64 - 1, INT64
    for check in field.validators:
        if type(check) is validate.Range:
            low = check.min if check.min is not None else low
            high = check.max if check.max is not None else high
    edges = [x for x in (low, low + 1, 0, high - 1, high) if low <= x <= high]
    return st.integers(low, high) | st.sampled_from(edges)


def _length(checks: list[Any]) -> tuple[int | None, int | None]:
    for check in checks:
        if type(check) is validate.Length:
            if check.equal is not None:
                return check.equal, check.equal
            return check.min, check.max
    return None, None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not writable as JSON a consumer can read
        return False
    return True


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """Any time string the contract accepts (year 2000-2099, offset mandatory)."""
    moment = draw(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59, 999999)))
    sep = draw(st.sampled_from("Tt"))
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + draw(st.from_regex(rf"[0-9]{{{digits}}}", fullmatch=True))
    zone = draw(st.sampled_from(["Z", "z", "+08:00", "-00:00", "+00:00", "+23:59", "-05:30", "+05:45", "-12:00"])
                | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(_offset))
    return text + zone


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"
