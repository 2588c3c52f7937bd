"""Wires the dunning domain into the shared decider shape."""
from __future__ import annotations

from .domain import decide as rules
from .domain.account import AccountState
from .domain.evolve import evolve
from .domain.holds import RELEVANT, concerns_dunning

INPUT_TOPICS = ("billing.bill.v1", "billing.payment.v1", "dunning.delivery.v1", "guard.decisions.v1")


class DunningDecider:
    service = "dunning"
    input_topics = INPUT_TOPICS
    decision_types_consumed = frozenset(RELEVANT)  # of the guard's decisions

    def stream_id(self, event) -> str | None:
        if event.event_type == "guard.decisions.v1":
            if not concerns_dunning(event.payload):
                return None
            return f"dunning-account-{event.payload['payload']['accountId']}"
        return f"dunning-account-{event.payload['accountId']}"

    def partition_key(self, event) -> str:
        return event.payload["accountId"]

    def order_sensitive(self, event) -> bool:
        """Bills and payments (CONTRACT.POISON_HOLD): what an account owes is folded from them in
        order, so one decided while an earlier one of the account could not be would misstate it."""
        return event.event_type in ("billing.bill.v1", "billing.payment.v1")

    def initial_state(self) -> AccountState:
        return AccountState()

    def evolve(self, state: AccountState, decision: dict) -> AccountState:
        return evolve(state, decision)

    def decide(self, state: AccountState, event, policy) -> list:
        return rules.decide(state, event, policy)
