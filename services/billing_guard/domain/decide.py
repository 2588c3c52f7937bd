"""billing_guard's decide (SPEC.md sections 1 and 2): which rule family decides each input.

An input reads several streams (see decider.py); the rules get their states by stream id, and
how streams are named is the adapter's business (the runtime stores them, claims included), so
decide asks the adapter's StreamNames for each id rather than spelling them here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from schemas.decision_types import dunning
from schemas.registry import REPARTITION_TOPICS
from services.common.decider import Decision

from . import suspension, vip_approval
from .customer_data import decide_change
from .disputes import REPLY_TIMER, decide_dispute, on_reply_timer
from .offline_billing import decide_bill, decide_cdr
from .planned_works import decide_work
from .policy import GuardPolicy
from .sequences import GAP_TIMER, decide_sequence, on_gap_timer
from .tariff_changes import decide_tariff

TIMER = "wuguan.timer.v1"
DUNNING = "dunning.decisions.v1"
SUSPENSION_REQUEST = "guard.suspensionRequest"  # the request shape, for callers other than dunning
# The guard's own charge decisions, republished keyed by switch: its switches' sequences (CP3.SEQUENCE_GAP).
SWITCH_NOTES = REPARTITION_TOPICS["billing_guard"].topic


@dataclass(frozen=True)
class StreamNames:
    """The ids of the streams an input reads, as the adapter names them."""

    account: Callable[[str], str]  # account id -> the account's stream
    switch: Callable[[str], str]  # switch id -> the switch's sequence stream, read by its notes (CP3.SEQUENCE_GAP)
    charges: Callable[[str], str]  # account id -> the view of the account's charges (disputes)
    cdr_claim: Callable[[dict], str]  # CDR payload -> its CP3.DEDUP claim
    tariffs: str  # the tariff catalogue (CP2)
    works: str  # the planned works (CP5)


def dunning_account(event) -> str:
    """The account a dunning decision names; one that names none lands on a stream never written."""
    return event.payload.get("payload", {}).get("accountId") or "none"


def _cdr(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    p = event.payload
    return decide_cdr(states[streams.account(p["accountId"])], states[streams.tariffs], states[streams.works],
                      states[streams.cdr_claim(p)], event, policy)


def note_switch(event) -> str:
    """The switch a note (a routed charge decision's envelope) is about."""
    return event.payload["payload"]["switchId"]


def _switch_note(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    switch = streams.switch(note_switch(event))
    return decide_sequence(states[switch], event, policy, switch)


def _tariff(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    return decide_tariff(states[streams.tariffs], event, policy, streams.tariffs)


def _cutover(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    return decide_work(states[streams.works], event, policy)


def _dispute(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    account = event.payload["accountId"]
    return decide_dispute(states[streams.account(account)], states[streams.charges(account)],
                          states[streams.tariffs], states[streams.works], event, policy)


def _on_account(rule: Callable) -> Callable:
    """An input decided on its account's state alone: rule(account state, event, policy)."""
    def decide_on_account(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
        return rule(states[streams.account(event.payload["accountId"])], event, policy)
    return decide_on_account


def _restoration(state, event, policy: GuardPolicy) -> list[Decision]:
    return suspension.decide_restoration(state, event)


def _suspension_request(state, event, policy: GuardPolicy) -> list[Decision]:
    return vip_approval.decide_request(state, suspension.parse_request(event.payload), event, policy)


def _dunning(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    p = event.payload
    if p["decisionType"] != dunning.SUSPENSION_REQUESTED:  # the one dunning decision it acts on (DN.ESCALATE)
        return []
    return vip_approval.decide_request(states[streams.account(dunning_account(event))],
                                       suspension.from_dunning(p), event, policy)


def _gap_timer(state, stream_id: str, event, policy: GuardPolicy) -> list[Decision]:
    return on_gap_timer(state, event, stream_id)


def _reply_timer(state, stream_id: str, event, policy: GuardPolicy) -> list[Decision]:
    return on_reply_timer(state, event)


def _approval_timer(state, stream_id: str, event, policy: GuardPolicy) -> list[Decision]:
    return vip_approval.on_timeout(state, event, policy)


def _suspension_timer(state, stream_id: str, event, policy: GuardPolicy) -> list[Decision]:
    return suspension.on_timer(state, event)


# A timer names its kind; any kind not listed is one of CP4's suspension timers.
TIMERS = {GAP_TIMER: _gap_timer, REPLY_TIMER: _reply_timer, vip_approval.APPROVAL_TIMER: _approval_timer}


def _timer(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    (stream_id, state), = states.items()  # a timer reads the one stream that set it
    return TIMERS.get(event.payload["kind"], _suspension_timer)(state, stream_id, event, policy)


RULES = {
    "billing.cdr.v1": _cdr,  # CP2, CP3, CP5.WINDOW_CDRS
    SWITCH_NOTES: _switch_note,  # CP3.SEQUENCE_GAP
    "billing.tariff.v1": _tariff,  # CP2
    "billing.cutover.v1": _cutover,  # CP5
    "billing.dispute.v1": _dispute,  # D.*
    "billing.customer.v1": _on_account(decide_change),  # CP1
    "billing.bill.v1": _on_account(decide_bill),  # CP4.OVERDUE_30 (the bill its checks read)
    "billing.payment.v1": _on_account(suspension.decide_payment),  # CP4.NO_PAYMENT_IN_FLIGHT, CP4.RESTORE_48H
    "billing.restoration.v1": _on_account(_restoration),  # CP4.RESTORE_48H
    "billing.approval.v1": _on_account(vip_approval.decide_answer),  # CP4.IMPORTANT
    SUSPENSION_REQUEST: _on_account(_suspension_request),  # CP4
    DUNNING: _dunning,  # CP4, on dunning's request
    TIMER: _timer,
}


def decide(states: dict, event, policy: GuardPolicy, streams: StreamNames) -> list[Decision]:
    """The guard's decisions about one input, given the states of the streams it reads."""
    rule = RULES.get(event.event_type)
    return rule(states, event, policy, streams) if rule is not None else []
