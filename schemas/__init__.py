"""Wuguan event contracts: envelope, payload schemas per topic, decisions and dead letters.

marshmallow schemas here are the source of truth; schemas/json/ holds the generated JSON
Schema files and schemas/examples/ valid examples (see schemas/README.md).
"""
from .decision import DecisionSchema, decode_decision, encode_decision, validate_decision
from .encoding import encode_event
from .envelope import InputEvent
from .registry import DECISION_TOPICS, INPUT_TOPICS, PARTITION_KEY, dlq_topic, partition_key
from .errors import InvalidEvent
from .validation import content_hash, dead_letter, decode_event, validate_dead_letter

__all__ = [
    "DECISION_TOPICS",
    "INPUT_TOPICS",
    "PARTITION_KEY",
    "DecisionSchema",
    "InputEvent",
    "InvalidEvent",
    "content_hash",
    "dead_letter",
    "decode_decision",
    "decode_event",
    "dlq_topic",
    "encode_decision",
    "encode_event",
    "partition_key",
    "validate_dead_letter",
    "validate_decision",
]
