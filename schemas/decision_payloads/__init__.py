"""One payload schema per decision type: what a decision's `payload` holds (SPEC 5, A.EVENT).

The envelope is schemas.decision; these are what it leaves free. `python -m schemas.generate`
writes one JSON Schema per type to schemas/json/decisions/. Every decision the deciders build is
checked against its type's schema: in the unit tests (through harness/) and on the wire
in the sample-day e2e test. A decision type without a schema here fails
tests/unit/test_decision_payloads.py, which names it.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from ..fields import Id, Uuid
from ..registry import DECISION_TOPICS
from ..validation import PAYLOAD_INVALID, InvalidEvent, invalid_from_messages
from . import cards, dunning, guard
from .base import DecisionPayload


class StreamBlocked(DecisionPayload):
    """<prefix>.StreamBlocked (CONTRACT.POISON_HOLD): an input held behind an earlier input of its
    stream that could not be decided."""

    heldStream = Id("The stream the held input belongs to.", max_length=200)
    poisonedBy = Uuid("eventId of the input that could not be decided.")


def _stream_blocked_types() -> dict[str, type[Schema]]:
    # services.common.runtime.poison_hold names it after the service's decision topic prefix.
    return {f"{topic.split('.')[0]}.StreamBlocked": StreamBlocked for topic in DECISION_TOPICS.values()}


DECISION_PAYLOADS: dict[str, type[Schema]] = {
    **guard.PAYLOADS, **dunning.PAYLOADS, **cards.PAYLOADS, **_stream_blocked_types(),
}

_SCHEMAS: dict[str, Schema] = {}


def payload_schema_of(decision_type: str) -> Schema:
    """The payload schema of a decision type; KeyError names a type that has none."""
    if decision_type not in _SCHEMAS:
        _SCHEMAS[decision_type] = DECISION_PAYLOADS[decision_type]()
    return _SCHEMAS[decision_type]


def validate_decision_payload(decision: dict[str, Any], *, unknown_type_ok: bool = False) -> None:
    """Raise InvalidEvent(payload_invalid) unless the decision's payload fits its type's schema.

    unknown_type_ok: pass a type that has no schema yet (the test harnesses, so that a new type
    fails one test naming it, tests/unit/test_decision_payloads.py, rather than every test)."""
    decision_type = decision.get("decisionType")
    if decision_type not in DECISION_PAYLOADS:
        if unknown_type_ok:
            return
        raise InvalidEvent(PAYLOAD_INVALID, f"no payload schema for decision type {decision_type!r}",
                           ("decisionType",))
    try:
        payload_schema_of(decision_type).load(decision.get("payload"))
    except ValidationError as exc:
        raise invalid_from_messages(PAYLOAD_INVALID, exc.messages, prefix="payload") from None
