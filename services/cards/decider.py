"""cards' decider. Replacement rules (SPEC.md section 4) are tracked in their own issue;
until then the service consumes and validates its inputs (invalid ones are dead-lettered
with the reason) and records each as processed."""
from __future__ import annotations

from schemas.registry import partition_key

INPUT_TOPICS = ("cards.inventory.v1", "cards.complaint.v1")


class CardsDecider:
    service = "cards"
    input_topics = INPUT_TOPICS

    def stream_id(self, event) -> str:
        return f"cards-{partition_key(event.event_type, event.payload)}"

    def partition_key(self, event) -> str:
        return partition_key(event.event_type, event.payload)

    def initial_state(self) -> dict:
        return {}

    def evolve(self, state: dict, decision: dict) -> dict:
        return state

    def decide(self, state: dict, event, policy) -> list:
        return []
