"""Wires the cards domain (SPEC.md section 4) into the shared multi-stream decider shape."""
from __future__ import annotations

from schemas.registry import partition_key

from .domain import decide as rules
from .domain.state import evolve, initial_state

INPUT_TOPICS = (rules.INVENTORY, rules.COMPLAINT)


class CardsDecider:
    """A MultiStreamDecider: a card's stream and, where stock moves, its outlet's stream."""

    service = "cards"
    input_topics = INPUT_TOPICS

    def stream_ids(self, event) -> tuple[str, ...]:
        return rules.stream_ids(event)

    def partition_key(self, event) -> str:
        return partition_key(event.event_type, event.payload)

    def initial_state(self, stream_id: str):
        return initial_state(stream_id)

    def evolve(self, state, decision: dict):
        return evolve(state, decision)

    def decide(self, states: dict, event, policy) -> list:
        return rules.decide(states, event, policy)
