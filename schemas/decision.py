"""The decision envelope on guard/dunning/cards.decisions.v1 (SPEC 5, A.EVENT).

Services produce these; this module only defines and checks them, so a service cannot publish
a decision that downstream readers (finance, the other services, auditors) cannot trace.
"""
from __future__ import annotations

from typing import Any

import orjson
from marshmallow import ValidationError

from .fields import Choice, FreeObject, Id, ListOf, Matching, Name, StrictSchema, Timestamp, Uuid
from .registry import DECISION_TOPICS
from .errors import ENVELOPE_INVALID, MALFORMED_JSON, NOT_AN_OBJECT, InvalidEvent
from .validation import invalid_from_messages

# Rule ids as written in SPEC.md: CP2.INCREASE_NEEDS_APPROVAL, DN.FIRST_LETTER, C.ONCE, A.EVENT.
RULE_ID_PATTERN = r"^[A-Z][A-Z0-9]*\.[A-Z0-9_]+$"
# <service or area prefix>.<PascalCase name>: dunning.ReminderScheduled, guard.DuplicateCdrSuppressed.
DECISION_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*$"
# A single camelCase word: accepted, rejected, scheduled, alert, referred, replaced.
OUTCOME_PATTERN = r"^[a-z][A-Za-z0-9]*$"
REASON_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class DecisionSchema(StrictSchema):
    """A decision: what a service decided, under which rules and policy, caused by which inputs."""

    decisionId = Uuid("Deterministic id derived from the causing input and rule (A.REPLAY).")
    decisionType = Matching(
        DECISION_TYPE_PATTERN, "Must be <prefix>.<PascalCaseName>, e.g. dunning.ReminderScheduled.",
        "Kind of decision, e.g. dunning.ReminderScheduled.", max_length=128,
    )
    ruleIds = ListOf(
        Matching(RULE_ID_PATTERN, "Must be a SPEC rule id such as DN.FIRST_LETTER."),
        "SPEC rule ids that fired.", min_items=1, max_items=50,
    )
    outcome = Matching(OUTCOME_PATTERN, "Must be one camelCase word, e.g. accepted.",
                       "accepted, rejected, scheduled, alert, ...", max_length=32)
    reasonCodes = ListOf(
        Matching(REASON_CODE_PATTERN, "Must be a code of letters, digits and _ . : -."),
        "Machine-readable reasons (may be empty).", max_items=50,
    )
    causedBy = ListOf(Uuid(), "eventIds (or decisionIds) of the events that caused this decision.",
                      min_items=1)
    policyVersion = Name("Version of the policy configuration used.")
    service = Choice(tuple(DECISION_TOPICS), "Producing service.")
    serviceVersion = Name("Version of the producing service.")
    businessTime = Timestamp("Business time the decision applies to (from the events, not the wall clock).")
    streamId = Name("Event-store stream the decision belongs to, e.g. account-ACC001.", max_length=200)
    correlationId = Id("Correlation id of the causing input, carried through.", required=True, allow_none=True)
    payload = FreeObject("Decision-specific details (documented per decisionType by each service).")


_DECISION = DecisionSchema()
_SERVICE_BY_TOPIC = {topic: service for service, topic in DECISION_TOPICS.items()}


def validate_decision(obj: dict[str, Any], topic: str | None = None) -> None:
    """Raise InvalidEvent(envelope_invalid) unless `obj` is a valid decision.

    `obj` is the JSON-ready dict; aware datetimes are accepted where a time is expected.
    With `topic`, also check that the decision's service publishes on that topic.
    """
    if type(obj) is not dict:
        raise InvalidEvent(NOT_AN_OBJECT, "decision is not an object")
    try:
        _DECISION.load(obj)
    except ValidationError as exc:
        raise invalid_from_messages(ENVELOPE_INVALID, exc.messages) from None
    except Exception as exc:  # same defence as decode_event: never crash a reader
        raise InvalidEvent(ENVELOPE_INVALID, f"decision could not be validated ({type(exc).__name__})") from exc
    if topic is not None and _SERVICE_BY_TOPIC.get(topic) != obj["service"]:
        raise InvalidEvent(ENVELOPE_INVALID, f"service does not publish on {topic!r}", ("service",))


def decode_decision(value: bytes, topic: str | None = None) -> dict[str, Any]:
    """Parse and validate a decision read from a decision topic; returns the JSON dict as is."""
    try:
        obj = orjson.loads(value)
    except (TypeError, ValueError, RecursionError):
        raise InvalidEvent(MALFORMED_JSON, "value is not valid UTF-8 JSON") from None
    validate_decision(obj, topic)
    return obj


def encode_decision(obj: dict[str, Any], topic: str | None = None) -> bytes:
    """Validate and serialize a decision (datetimes become RFC 3339 strings via orjson)."""
    validate_decision(obj, topic)
    return orjson.dumps(obj)
