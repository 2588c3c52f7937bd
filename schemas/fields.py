"""Field types shared by every contract: ids, text, money, RFC 3339 times, strict scalars.

Every constraint here is written so that `schemas.jsonschema` can export it: patterns use the
subset of regex syntax that Python and ECMA-262 (JSON Schema) read the same way (`[0-9]`, never
`\\d`, which matches non-ASCII digits in Python), and are matched in full.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

# Currencies a Money value may carry. Only CNY today; adding one is a contract change
# (regenerate the JSON Schema files), not a runtime switch.
ACCEPTED_CURRENCIES: frozenset[str] = frozenset({"CNY"})
# 10^12 fen = 10 billion yuan: far above any real bill, low enough to catch unit mix-ups.
MAX_AMOUNT_MINOR = 10**12
# Default bound on list lengths; a few fields that carry big sets (batches, affected
# accounts) set their own.
MAX_LIST = 1000
ID_MAX = 64
TEXT_MAX = 500

# Ids are opaque, but restricted to characters that are safe in logs, URLs and Kafka keys.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$"
# Names and references that may be Chinese (province 广东, filing ref 粤通管备[2024]12号):
# anything but control characters.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
# Free text may hold line breaks but never NUL: Postgres jsonb cannot store \u0000.
TEXT_PATTERN = r"^[^\x00]*$"
PHONE_PATTERN = r"^\+?[0-9]{3,20}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Business times: RFC 3339 with a mandatory offset. The year is limited to 2000-2099 so that a
# typo (20240 for 2024, a Unix-epoch default) fails at the contract, while a far but plausible
# future time (a card expiring in 2035, a mis-set switch clock) is left to the services' rules.
RFC3339_PATTERN = (
    r"^(20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]{1,9})?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
CLOCK_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# End of a time band may be 24:00 (a band that runs to midnight).
CLOCK_END_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


class Pattern(validate.Validator):
    """Full-match regex validator that the JSON Schema exporter understands.

    marshmallow's Regexp uses re.match, where `$` also matches before a trailing newline; a
    full match does not, and behaves like ECMA-262 `^...$`.
    """

    def __init__(self, regex: str, hint: str) -> None:
        self.regex = regex
        self.hint = hint
        self._compiled = re.compile(regex)

    def __call__(self, value: str) -> str:
        if self._compiled.fullmatch(value) is None:
            raise ValidationError(self.hint)
        return value


class _DirectValidation:
    """Run validators in a plain loop, stopping at the first failure.

    marshmallow builds a validate.And per value to collect every failure; on the CDR topic
    (10k+ events/s) that costs more than the checks themselves, and one message per field
    is all a dead letter needs.
    """

    validators: list[Any]

    def _validate(self, value: Any) -> None:
        for validator in self.validators:
            validator(value)


class ContractString(_DirectValidation, fields.String):
    """A JSON string (marshmallow's String would also take bytes)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if type(value) is not str:
            raise self.make_error("invalid")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        # No str() coercion on dump: a producer's wrong type must fail validation, not vanish.
        return value


class ContractInteger(_DirectValidation, fields.Integer):
    """A JSON integer: true/false and 1.0 are rejected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        # No int() coercion on dump (it would turn True into 1 and "5" into 5).
        return value


class StrictBoolean(fields.Field):
    """JSON true/false only; marshmallow's Boolean would also take 1, "yes", "on"."""

    default_error_messages = {"invalid": "Not a valid boolean (use true or false)."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


_RFC3339 = re.compile(RFC3339_PATTERN)


def parse_rfc3339(value: str) -> datetime | None:
    """The aware datetime (offset kept) for a contract time string, or None if it is not one.

    Shared by the marshmallow field and the compiled loaders (schemas.fastload) so that both
    give the very same datetime, with equal tzinfo objects.
    """
    if _RFC3339.fullmatch(value) is None:
        return None
    # The pattern decides what is valid; fromisoformat (Python >= 3.11) then reads every form it
    # admits as converting the groups one by one did (fraction cut to microseconds, "-00:00" and
    # "Z" as UTC, a fixed `timezone` offset), three times faster. Only a lowercase "z" is foreign
    # to it. tests/unit/test_time_formats.py holds the two equal. Each value gets a tzinfo object
    # of its own: re-attaching a shared one (which makes comparisons cheaper) cost more than the
    # guard's few comparisons per CDR save.
    if value[-1] == "z":
        value = value[:-1] + "Z"
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # 2024-02-30 and friends
        return None


class RFC3339DateTime(_DirectValidation, fields.Field):
    """An RFC 3339 date-time with offset, loaded as an aware datetime keeping its offset.

    Parsed with one strict regex rather than datetime.fromisoformat, which also accepts
    naive times, week dates, basic format and a space separator.
    """

    default_error_messages = {
        "invalid": (
            "Must be an RFC 3339 date-time with a UTC offset and a year 2000-2099, "
            "e.g. 2024-05-01T09:30:00+08:00."
        ),
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, datetime):
            # In-process dicts (validate_decision) may carry datetimes; JSON never does.
            if value.tzinfo is None or value.utcoffset() is None or not 2000 <= value.year <= 2099:
                raise self.make_error("invalid")
            return value
        if type(value) is not str:
            raise self.make_error("invalid")
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise self.make_error("invalid")
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime):
            # A naive value is written without offset on purpose: decoding then rejects it.
            return value.isoformat()
        return value


class BoundedList(fields.List):
    """A list whose length is checked before its items are loaded (cheap rejection of floods)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        if isinstance(value, list):
            for validator in self.validators:
                if isinstance(validator, validate.Length):
                    validator(value)
        return super()._deserialize(value, attr, data, **kwargs)


@dataclass(frozen=True)
class When:
    """A field requirement that depends on another field's value (e.g. billId on open).

    Declared as data, not code, so the JSON Schema exporter can emit the same rule as
    if/then and both validators agree.
    """

    field: str
    values: tuple[str, ...]
    require: tuple[str, ...]

    def message(self) -> str:
        values = "|".join(self.values)
        return f"Missing data for required field (required when {self.field} is {values})."


class StrictSchema(Schema):
    """Base for every contract object: unknown fields are errors, conditional rules apply."""

    conditional_required: ClassVar[tuple[When, ...]] = ()

    class Meta:
        unknown = RAISE

    @validates_schema
    def _check_conditional_required(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        for rule in self.conditional_required:
            if data.get(rule.field) in rule.values:
                for name in rule.require:
                    if data.get(name) is None:
                        errors.setdefault(name, []).append(rule.message())
        if errors:
            raise ValidationError(errors)


class MoneySchema(StrictSchema):
    """An amount in integer minor units (fen for CNY) and its ISO 4217 currency; never floats."""

    amountMinor = ContractInteger(
        required=True,
        validate=validate.Range(min=0, max=MAX_AMOUNT_MINOR),
        metadata={"description": "Amount in minor units (fen), 0..10^12."},
    )
    currency = ContractString(
        required=True,
        validate=[
            Pattern(r"^[A-Z]{3}$", "Must be an ISO 4217 code (3 uppercase letters)."),
            validate.OneOf(sorted(ACCEPTED_CURRENCIES)),
        ],
        metadata={"description": "ISO 4217 currency code; only CNY is accepted today."},
    )


# --- field constructors -------------------------------------------------------------------
# Each takes optional=True for a field that may be omitted or null (loaded as None, so a
# service can index the payload without .get), and passes other marshmallow kwargs through.


def _presence(optional: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    if "load_default" in kwargs or kwargs.get("required") is not None:
        return kwargs
    if optional:
        kwargs["load_default"] = None
    else:
        kwargs["required"] = True
    return kwargs


def _described(description: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    if description:
        kwargs["metadata"] = {**kwargs.get("metadata", {}), "description": description}
    return kwargs


def _string(
    pattern: str, hint: str, max_length: int, min_length: int, optional: bool,
    description: str | None, kwargs: dict[str, Any],
) -> fields.String:
    validators = [validate.Length(min=min_length, max=max_length), Pattern(pattern, hint)]
    return ContractString(validate=validators, **_described(description, _presence(optional, kwargs)))


def Matching(pattern: str, hint: str, description: str | None = None, *, optional: bool = False,
             min_length: int = 1, max_length: int = ID_MAX, **kwargs: Any) -> fields.String:
    """A string that must fully match `pattern`; `hint` is the error message (no value in it)."""
    return _string(pattern, hint, max_length, min_length, optional, description, kwargs)


def Id(description: str | None = None, *, optional: bool = False, max_length: int = ID_MAX,
       **kwargs: Any) -> fields.String:
    """An opaque identifier: letters, digits and . _ : @ / + -, starting with a letter or digit."""
    hint = "Must be an id of letters, digits and . _ : @ / + - (starting with a letter or digit)."
    return _string(ID_PATTERN, hint, max_length, 1, optional, description, kwargs)


def Name(description: str | None = None, *, optional: bool = False, max_length: int = ID_MAX,
         **kwargs: Any) -> fields.String:
    """A short name or reference that may be Chinese; no control characters."""
    hint = "Must be non-empty text without control characters."
    return _string(NAME_PATTERN, hint, max_length, 1, optional, description, kwargs)


def Text(description: str | None = None, *, optional: bool = False, max_length: int = TEXT_MAX,
         min_length: int = 1, **kwargs: Any) -> fields.String:
    """Free text (line breaks allowed, NUL not)."""
    hint = "Must not contain NUL characters."
    return _string(TEXT_PATTERN, hint, max_length, min_length, optional, description, kwargs)


def Uuid(description: str | None = None, *, optional: bool = False, **kwargs: Any) -> fields.String:
    """A UUID in canonical lowercase form, kept as a string so ids compare byte for byte."""
    hint = "Must be a lowercase canonical UUID (8-4-4-4-12 hex digits)."
    return _string(UUID_PATTERN, hint, 36, 36, optional, description, kwargs)


def PhoneNumber(description: str | None = None, *, optional: bool = False,
                **kwargs: Any) -> fields.String:
    hint = "Must be 3-20 digits with an optional leading '+'."
    return _string(PHONE_PATTERN, hint, 21, 3, optional, description, kwargs)


def ClockTime(description: str | None = None, *, end: bool = False, **kwargs: Any) -> fields.String:
    """Local wall-clock time HH:MM; an end time may be 24:00."""
    pattern = CLOCK_END_PATTERN if end else CLOCK_TIME_PATTERN
    hint = "Must be HH:MM (00:00-24:00)." if end else "Must be HH:MM (00:00-23:59)."
    return _string(pattern, hint, 5, 5, False, description, kwargs)


def Choice(values: tuple[str, ...], description: str | None = None, *, optional: bool = False,
           **kwargs: Any) -> fields.String:
    return ContractString(validate=validate.OneOf(values), **_described(description, _presence(optional, kwargs)))


def Const(value: str, description: str | None = None, **kwargs: Any) -> fields.String:
    return ContractString(validate=validate.Equal(value), **_described(description, _presence(False, kwargs)))


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def Int(description: str | None = None, *, minimum: int | None = None,
        maximum: int | None = None, optional: bool = False, **kwargs: Any) -> fields.Integer:
    """A JSON integer; true/false and 1.0 are rejected (strict). Without bounds of its own it
    must still fit 64 bits: what a consumer's parser and Postgres' bigint can hold."""
    validators = [validate.Range(min=INT64_MIN if minimum is None else minimum,
                                 max=INT64_MAX if maximum is None else maximum)]
    return ContractInteger(validate=validators, **_described(description, _presence(optional, kwargs)))


def MinorUnits(description: str | None = None, *, optional: bool = False,
               **kwargs: Any) -> fields.Integer:
    """A non-negative amount in fen outside a Money object (tariff rates and fees)."""
    return Int(description, minimum=0, maximum=MAX_AMOUNT_MINOR, optional=optional, **kwargs)


def Money(description: str | None = None, *, optional: bool = False, **kwargs: Any) -> fields.Nested:
    return fields.Nested(MoneySchema, **_described(description, _presence(optional, kwargs)))


def Timestamp(description: str | None = None, *, optional: bool = False,
              **kwargs: Any) -> RFC3339DateTime:
    return RFC3339DateTime(**_described(description, _presence(optional, kwargs)))


def Bool(description: str | None = None, *, optional: bool = False, **kwargs: Any) -> StrictBoolean:
    return StrictBoolean(**_described(description, _presence(optional, kwargs)))


def ListOf(inner: fields.Field, description: str | None = None, *, min_items: int = 0,
           max_items: int = MAX_LIST, optional: bool = False, **kwargs: Any) -> BoundedList:
    return BoundedList(
        inner,
        validate=validate.Length(min=min_items, max=max_items),
        **_described(description, _presence(optional, kwargs)),
    )


def Object(schema: type[Schema], description: str | None = None, *, optional: bool = False,
           **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, **_described(description, _presence(optional, kwargs)))


def FreeObject(description: str | None = None, **kwargs: Any) -> fields.Dict:
    """Any JSON object (decision payloads, the envelope before the topic schema applies)."""
    return fields.Dict(**_described(description, _presence(False, kwargs)))
