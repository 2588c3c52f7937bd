"""What every decision payload may carry, whatever its type: the timer requests that
services.common.decisions adds to a payload when a decision asks for a wake-up or cancels one."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..fields import Choice, FreeObject, Id, ListOf, Object, StrictSchema, Text, Timestamp


class TimerRequest(StrictSchema):
    """A wake-up the decision asks for; it comes back to the service as an input at dueAt."""

    timerId = Id("Deterministic id of the timer (A.REPLAY).", max_length=200)
    dueAt = Timestamp("Business time the timer is due.")
    kind = Id("What the timer is for, e.g. dunning.reminder.")
    key = Text("Kafka partition key of the wake-up (the stream's owner).", max_length=200)
    data = FreeObject("What the service needs back when the timer fires.")


class DecisionPayload(StrictSchema):
    """Base of every decision type's payload schema."""

    timer = Object(TimerRequest, "Timer this decision asks for.", optional=True)
    cancelsTimers = ListOf(Id(max_length=200), "Ids of timers this decision cancels.", optional=True)


def same_choices(schema: type[Schema], name: str, *, optional: bool = False) -> fields.String:
    """A field with the closed set of values of an input field it copies (one list for both)."""
    [one_of] = [v for v in schema._declared_fields[name].validators if isinstance(v, validate.OneOf)]
    return Choice(tuple(one_of.choices), optional=optional)
