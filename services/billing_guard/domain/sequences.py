"""Per-switch sequence tracking (CP3.SEQUENCE_GAP).

State is a high-water mark plus the open gaps, so it stays small however many CDRs a switch
sends: contiguous arrivals only move the mark. A gap opened by a jump asks for a timer at the
end of the grace period; the timer reports whatever of that gap is still missing.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import timedelta

from services.common.decider import Decision, Timer
from services.common.ids import derived_id

from schemas.decision_types.guard import SEQUENCE_GAP_ALERT, SWITCH_SEQUENCE_RECORDED

GAP_TIMER = "sequenceGap"


@dataclass(frozen=True)
class Gap:
    low: int
    high: int
    timer_id: str


@dataclass(frozen=True)
class SwitchState:
    high_water: int | None = None
    gaps: tuple[Gap, ...] = ()
    alerted: frozenset = frozenset()


def _gap_of(gaps: tuple[Gap, ...], seq: int) -> int | None:
    """Index of the open gap holding `seq`. Gaps are disjoint and kept in ascending order (a jump
    opens a gap above every other; filling one splits it in place), so a bisection finds it:
    a linear scan made each late CDR cost O(open gaps), and a switch spread over partitions
    keeps hundreds of small gaps open."""
    i = bisect_right(gaps, seq, key=_low) - 1
    return i if i >= 0 and seq <= gaps[i].high else None


def _low(gap: Gap) -> int:
    return gap.low


def classify(state: SwitchState, seq: int) -> str:
    if state.high_water is None or seq == state.high_water + 1:
        return "inSequence"
    if seq > state.high_water + 1:
        return "gapOpened"
    i = _gap_of(state.gaps, seq)
    if i is None:
        return "repeated"
    return "gapClosed" if state.gaps[i].low == state.gaps[i].high else "gapFilled"


def _fill(gaps: tuple[Gap, ...], i: int, seq: int) -> tuple[Gap, ...]:
    gap = gaps[i]
    pieces = ()
    if gap.low < seq:
        pieces += (Gap(gap.low, seq - 1, gap.timer_id),)
    if seq < gap.high:
        pieces += (Gap(seq + 1, gap.high, gap.timer_id),)
    return gaps[:i] + pieces + gaps[i + 1:]


def advance(state: SwitchState, seq: int, timer_id: str | None) -> SwitchState:
    """The state after `seq` arrived; `timer_id` names the gap a jump opens. Used by decide and evolve."""
    if state.high_water is None or seq == state.high_water + 1:
        return SwitchState(seq, state.gaps, state.alerted)
    if seq > state.high_water + 1:
        return SwitchState(seq, state.gaps + (Gap(state.high_water + 1, seq - 1, timer_id),), state.alerted)
    i = _gap_of(state.gaps, seq)
    if i is None:
        return state
    return SwitchState(state.high_water, _fill(state.gaps, i, seq), state.alerted)


def _emptied_timer(state: SwitchState, seq: int) -> str | None:
    """The gap timer `seq` leaves with nothing missing: the pieces of one gap stay next to each
    other, so only the filled gap's neighbours can still hold its timer."""
    i = _gap_of(state.gaps, seq)
    gap = state.gaps[i]
    if gap.low != gap.high:
        return None
    for j in (i - 1, i + 1):
        if 0 <= j < len(state.gaps) and state.gaps[j].timer_id == gap.timer_id:
            return None
    return gap.timer_id


def decide_sequence(state: SwitchState, event, policy, stream_id: str) -> Decision:
    p = event.payload
    seq = p["sequenceNumber"]
    outcome = classify(state, seq)
    timer, cancels, timer_id = None, (), None
    if outcome == "gapOpened":
        timer_id = derived_id(event.event_id, GAP_TIMER)
        timer = Timer(timer_id, event.event_time + timedelta(seconds=policy.sequence_gap_grace_seconds), GAP_TIMER,
                      p["switchId"], {"switchId": p["switchId"]})
    if outcome == "gapClosed":
        # A gap fully filled before its grace period ends needs no alert any more.
        emptied = _emptied_timer(state, seq)
        cancels = (emptied,) if emptied is not None and emptied not in state.alerted else ()
    body = {"switchId": p["switchId"], "sequenceNumber": seq, "usageId": p["usageId"]}
    if timer_id:
        body["gapTimerId"] = timer_id
        body["missingFrom"], body["missingTo"] = state.high_water + 1, seq - 1
    reasons = ("SEQUENCE_REPEATED",) if outcome == "repeated" else ()
    return Decision(SWITCH_SEQUENCE_RECORDED, ("CP3.SEQUENCE_GAP",), outcome, body, reasons, timer=timer,
                    cancels_timers=cancels, stream_id=stream_id)


def on_gap_timer(state: SwitchState, event, stream_id: str) -> list[Decision]:
    timer_id = event.payload["timerId"]
    missing = [g for g in state.gaps if g.timer_id == timer_id]
    if not missing or timer_id in state.alerted:
        return []
    ranges = [{"from": g.low, "to": g.high} for g in missing]
    return [Decision(SEQUENCE_GAP_ALERT, ("CP3.SEQUENCE_GAP",), "alert",
                     {"switchId": event.payload["data"]["switchId"], "missingRanges": ranges,
                      "missingCount": sum(g.high - g.low + 1 for g in missing), "timerId": timer_id},
                     ("SEQUENCE_GAP_OPEN_AFTER_GRACE",), stream_id=stream_id)]


def evolve_switch(state: SwitchState, decision: dict) -> SwitchState:
    kind, body = decision["decisionType"], decision["payload"]
    if kind == SWITCH_SEQUENCE_RECORDED:
        return advance(state, body["sequenceNumber"], body.get("gapTimerId"))
    if kind == SEQUENCE_GAP_ALERT:
        return SwitchState(state.high_water, state.gaps, state.alerted | {body["timerId"]})
    return state

