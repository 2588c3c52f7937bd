"""Another service's published decisions, read as inputs (e.g. dunning reading the guard's
dispute holds). The decision id is the input id, so the relay's at-least-once delivery is
decided once."""
from __future__ import annotations

import orjson

from schemas.decision import decode_decision
from schemas.errors import ENVELOPE_INVALID, MALFORMED_JSON, InvalidEvent
from schemas.envelope import InputEvent
from schemas.registry import DECISION_TOPICS

from ..timefmt import parse_rfc3339

DECISION_TOPIC_NAMES = frozenset(DECISION_TOPICS.values())
DECISION_TYPE_HEADER = "wuguan-decision-type"
# The envelope fields a decision read back as an input is known by (as_input), which a note on a
# repartition topic keeps of its decision (relay.note_sql), with the route's payload fields; and its
# type, which as_input does not read but an operator reading the topic or its dead letters does.
NOTE_ENVELOPE = ("decisionId", "decisionType", "businessTime", "service", "correlationId", "causedBy")


def note_of(decision: dict, note_fields: tuple[str, ...]) -> dict:
    """A stored decision's note on its repartition topic (schemas.registry.Repartition.note_fields);
    the relay has Postgres build the same (relay.note_sql)."""
    return {**{f: decision.get(f) for f in NOTE_ENVELOPE},
            "payload": {f: decision["payload"].get(f) for f in note_fields}}


def decode_decision_input(topic: str, value: bytes) -> InputEvent:
    return as_input(topic, decode_decision(value, topic))


def as_input(topic: str, decision: dict) -> InputEvent:
    """A decision read on `topic` as an input: its id is the input's id."""
    return InputEvent(
        event_id=decision["decisionId"],
        event_type=topic,
        schema_version=1,
        event_time=parse_rfc3339(decision["businessTime"]),
        source=decision["service"],
        correlation_id=decision.get("correlationId"),
        causation_id=decision["causedBy"][0],
        payload=decision,
        raw=decision,
    )


def decode_repartitioned(topic: str, value: bytes) -> list[InputEvent | InvalidEvent]:
    """The service's own stored decisions, come back keyed otherwise (schemas.registry.Repartition):
    a JSON array of their notes (or one; a note is the decision's NOTE_ENVELOPE and the route's
    payload fields, or, sent before notes were cut, the whole decision), each an input of its own,
    or the InvalidEvent of an element that is not one (the message is dead-lettered for it; the
    others are decided). The relay wrote them from the log, so they are read without the contract
    check a decision of another service gets (a fifth of a CDR's cost): only what the input needs."""
    try:
        decisions = orjson.loads(value)
    except (TypeError, ValueError, RecursionError):
        raise InvalidEvent(MALFORMED_JSON, "value is not valid UTF-8 JSON") from None
    return [_repartitioned(topic, d) for d in (decisions if type(decisions) is list else [decisions])]


def _repartitioned(topic: str, decision) -> InputEvent | InvalidEvent:
    try:
        return as_input(topic, decision)
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return InvalidEvent(ENVELOPE_INVALID, "an element is not a stored decision of this service")
