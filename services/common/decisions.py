"""Turns a domain Decision into the published decision envelope (A.EVENT). Pure."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .decider import Decision
from .ids import derived_id
from .timefmt import rfc3339


@lru_cache(maxsize=4096)
def input_decision_id(service: str, input_id: str) -> str:
    """The id of an input's first stored decision: a function of the service and the input alone,
    never of what was decided. The event store's unique index on decision ids thereby finds a
    redelivered input and refuses a second decision of it, where a row per input did (migration
    0009). Cached: a batch asks for it twice per input, looking the inputs up and naming their
    first decisions (a batch of more than the cache's 4 096 inputs still gets the same ids)."""
    return derived_id(service, "input", input_id)


def decision_envelopes(
    decisions: Sequence[Decision],
    *,
    event,
    stream_id: str,  # where decisions that name no stream of their own go
    service: str,
    service_version: str,
    policy_version: str,
    names_input: bool = True,  # False: the first decision does not record the input as decided
) -> list[dict]:
    envelopes = []
    input_time = None  # the input's own time, written once for every decision that has none
    for ordinal, decision in enumerate(decisions):
        if decision.business_time is not None:
            business_time = rfc3339(decision.business_time)
        else:
            business_time = input_time = input_time or rfc3339(event.event_time)
        envelopes.append(
            {
                "decisionId": input_decision_id(service, event.event_id) if ordinal == 0 and names_input
                else derived_id(event.event_id, decision.decision_type, ordinal),
                "decisionType": decision.decision_type,
                "ruleIds": list(decision.rule_ids),
                "outcome": decision.outcome,
                "reasonCodes": list(decision.reason_codes),
                "causedBy": [event.event_id],
                "policyVersion": policy_version,
                "service": service,
                "serviceVersion": service_version,
                "businessTime": business_time,
                "streamId": decision.stream_id or stream_id,
                "correlationId": event.correlation_id,
                "payload": _payload(decision),
            }
        )
    return envelopes


def _payload(decision: Decision) -> dict:
    """The decision's payload with its timer requests; a copy when there are any, so the Decision
    stays as it was. Without, the payload itself: neither side is changed once decided (states are
    copied on change), and copying a charge's thirty fields for every CDR was for nothing."""
    if decision.timer is None and not decision.cancels_timers:
        return decision.payload
    payload = dict(decision.payload)
    if decision.timer is not None:
        payload["timer"] = {
            "timerId": decision.timer.timer_id,
            "dueAt": rfc3339(decision.timer.due_at),
            "kind": decision.timer.kind,
            "key": decision.timer.key,
            "data": decision.timer.data,
        }
    if decision.cancels_timers:
        payload["cancelsTimers"] = list(decision.cancels_timers)
    return payload
