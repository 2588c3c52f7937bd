"""Turns a domain Decision into the published decision envelope (A.EVENT). Pure."""
from __future__ import annotations

from collections.abc import Sequence

from .decider import Decision
from .ids import derived_id
from .timefmt import rfc3339


def decision_envelopes(
    decisions: Sequence[Decision],
    *,
    event,
    stream_id: str,  # where decisions that name no stream of their own go
    service: str,
    service_version: str,
    policy_version: str,
) -> list[dict]:
    envelopes = []
    for ordinal, decision in enumerate(decisions):
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
        envelopes.append(
            {
                "decisionId": derived_id(event.event_id, decision.decision_type, ordinal),
                "decisionType": decision.decision_type,
                "ruleIds": list(decision.rule_ids),
                "outcome": decision.outcome,
                "reasonCodes": list(decision.reason_codes),
                "causedBy": [event.event_id],
                "policyVersion": policy_version,
                "service": service,
                "serviceVersion": service_version,
                "businessTime": rfc3339(decision.business_time or event.event_time),
                "streamId": decision.stream_id or stream_id,
                "correlationId": event.correlation_id,
                "payload": payload,
            }
        )
    return envelopes
