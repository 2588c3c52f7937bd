"""The decisions of one cards input, drafted on a working copy of the streams it loaded."""
from __future__ import annotations

from services.common.decider import Decision, Rejected
from services.common.timefmt import rfc3339

from .policy import CardsPolicy
from .rule_ids import STATES
from .state import (
    BLOCKED, EXHAUSTED, EXPIRED, ISSUED, UNKNOWN, VOID, CardState, apply, card_stream, outlet_stream,
)

# The reason code a card's status gives for refusing what the input asks of it.
STATUS_REASON = {
    UNKNOWN: "unknownCard", ISSUED: "cardNotActivated", EXHAUSTED: "cardExhausted",
    BLOCKED: "cardBlocked", EXPIRED: "cardExpired", VOID: "cardVoid",
}


class Draft:
    """Decisions for one input, each applied to a working copy so later ones see earlier ones."""

    def __init__(self, states: dict, event, policy: CardsPolicy):
        self.states = dict(states)
        self.event = event
        self.payload = event.payload
        self.policy = policy
        self.at = event.event_time
        self.decisions: list[Decision] = []

    def add(self, stream: str, kind: str, outcome: str, rules: tuple[str, ...], payload: dict,
            reasons: tuple[str, ...] = ()) -> None:
        self.decisions.append(
            Decision(decision_type=kind, rule_ids=rules, outcome=outcome, payload=payload,
                     reason_codes=reasons, stream_id=stream)
        )
        self.states[stream] = apply(self.states[stream], kind, payload)

    # the input's card (every input but batchIssued has one)
    @property
    def card_stream(self) -> str:
        return card_stream(self.payload["cardSerial"])

    @property
    def card(self) -> CardState:
        return self.states[self.card_stream]

    @property
    def outlet_stream(self) -> str | None:
        outlet_id = self.payload.get("outletId")
        stream = outlet_stream(outlet_id) if outlet_id else None
        return stream if stream in self.states else None


def expiry(moment) -> str | None:
    return rfc3339(moment) if moment is not None else None


def check_currency(card: CardState, amount: dict, field: str) -> None:
    """C.STATES: a card holds one currency; an amount in another is rejected, not converted."""
    if amount["currency"] != card.currency:
        raise Rejected(STATES, f"payload.{field}.currency differs from the card's currency")
