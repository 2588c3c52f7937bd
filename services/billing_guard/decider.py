"""billing_guard's decider. The five checkpoints and disputes (SPEC.md sections 1-2) are
tracked in their own issue; until then the guard consumes and validates its inputs
(invalid ones are dead-lettered with the reason) and records each as processed."""
from __future__ import annotations

INPUT_TOPICS = (
    "billing.cdr.v1", "billing.tariff.v1", "billing.customer.v1", "billing.cutover.v1",
    "billing.dispute.v1",
)

STREAM_KEYS = {
    "billing.cdr.v1": ("account", "accountId"),
    "billing.customer.v1": ("account", "accountId"),
    "billing.dispute.v1": ("account", "accountId"),
    "billing.tariff.v1": ("tariff", "tariffId"),
    "billing.cutover.v1": ("work", "workId"),
}


class GuardDecider:
    service = "billing_guard"
    input_topics = INPUT_TOPICS

    def stream_id(self, event) -> str:
        kind, field = STREAM_KEYS[event.event_type]
        return f"guard-{kind}-{event.payload[field]}"

    def partition_key(self, event) -> str:
        return event.payload[STREAM_KEYS[event.event_type][1]]

    def initial_state(self) -> dict:
        return {}

    def evolve(self, state: dict, decision: dict) -> dict:
        return state

    def decide(self, state: dict, event, policy) -> list:
        return []
