"""Another service's published decisions, read as inputs (e.g. dunning reading the guard's
dispute holds). The decision id is the input id, so the relay's at-least-once delivery is
decided once."""
from __future__ import annotations

from schemas.decision import decode_decision
from schemas.envelope import InputEvent
from schemas.registry import DECISION_TOPICS

from ..timefmt import parse_rfc3339

DECISION_TOPIC_NAMES = frozenset(DECISION_TOPICS.values())
DECISION_TYPE_HEADER = "wuguan-decision-type"


def decode_decision_input(topic: str, value: bytes) -> InputEvent:
    decision = decode_decision(value, topic)
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
