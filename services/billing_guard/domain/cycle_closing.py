"""CP3.LATE by event time: an account's cycle closes when its CDR watermark passes the cycle's
end plus the policy's grace; a CDR of a closed cycle is a late adjustment to that same cycle.

The watermark is the latest call start among the account's own CDRs (AccountState.watermark).
An account's CDRs share one partition of billing.cdr.v1 (keyed by account), so the watermark,
and every decision made from it, is a function of that partition's order alone: never of when
bills, payments or other accounts' CDRs arrive, nor of how the input was cut into batches.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from schemas.decision_types.guard import USAGE_CYCLE_CLOSED
from services.common.decider import Decision
from services.common.timefmt import rfc3339

from .account import AccountState
from .cycles import cycle_end, previous_cycle
from .policy import GuardPolicy


def closes_at(cycle: str, policy: GuardPolicy) -> datetime:
    return _closes_at(cycle, policy.timezone, policy.cycle_close_grace_seconds)


@lru_cache(maxsize=4096)
def _closes_at(cycle: str, zone, grace_seconds: int) -> datetime:
    """Cached: asked several times for every CDR (which cycles close, the huge-fee baseline)."""
    return cycle_end(cycle, zone) + timedelta(seconds=grace_seconds)


def is_closed(state: AccountState, cycle: str, policy: GuardPolicy) -> bool:
    """True once the watermark has reached the cycle's end plus grace (CP3.LATE)."""
    return cycle in state.usage_closed or (state.watermark is not None and state.watermark >= closes_at(cycle, policy))


def cycles_closing(state: AccountState, start: datetime, policy: GuardPolicy) -> list[str]:
    """The account's charged cycles a CDR starting at `start` closes by moving the watermark."""
    if state.watermark is not None and start <= state.watermark:
        return []
    closing = []
    for c in sorted(state.cycle_totals):  # closes_at grows with the cycle: stop at the first still open
        if closes_at(c, policy) > start:
            break
        if c not in state.usage_closed:
            closing.append(c)
    return closing


def closing_decisions(state: AccountState, cycles: list[str], start: datetime, policy: GuardPolicy,
                      account_id: str) -> list[Decision]:
    return [Decision(USAGE_CYCLE_CLOSED, ("CP3.LATE",), "closed",
                     {"accountId": account_id, "cycle": c, "chargesMinor": state.cycle_totals[c],
                      "closesAt": rfc3339(closes_at(c, policy)), "watermark": rfc3339(start),
                      "graceSeconds": policy.cycle_close_grace_seconds},
                     ("WATERMARK_PASSED_CYCLE_END_PLUS_GRACE",))
            for c in cycles]


def baseline_cycles(state: AccountState, cycle: str, start: datetime, policy: GuardPolicy) -> list[str]:
    """CP3.HUGE_FEE's baseline (seed art. 33): of the N calendar cycles just before `cycle`, those
    from the account's first charged cycle on that the watermark (with this CDR's call start) has
    closed. A month without usage is in it with 0 fen: an idle month lowers the average."""
    if not state.cycle_totals:
        return []
    first = min(state.cycle_totals)
    mark = start if state.watermark is None or start > state.watermark else state.watermark
    baseline, month = [], cycle
    for _ in range(policy.huge_fee_baseline_cycles):
        month = previous_cycle(month)
        if month < first:
            break
        if month in state.usage_closed or closes_at(month, policy) <= mark:
            baseline.append(month)
    return sorted(baseline)
