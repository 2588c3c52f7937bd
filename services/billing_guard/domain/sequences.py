"""Per-switch sequence tracking (CP3.SEQUENCE_GAP).

State is a high-water mark plus the open gaps, so it stays small however many CDRs a switch
sends: contiguous arrivals only move the mark. A gap opened by a jump asks for a timer at the
end of the grace period; the timer reports whatever of that gap is still missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.common.decider import Decision, Timer
from services.common.ids import derived_id

RECORDED = "guard.SwitchSequenceRecorded"
GAP_ALERT = "guard.SequenceGapAlert"
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


def classify(state: SwitchState, seq: int) -> str:
    if state.high_water is None or seq == state.high_water + 1:
        return "inSequence"
    if seq > state.high_water + 1:
        return "gapOpened"
    for gap in state.gaps:
        if gap.low <= seq <= gap.high:
            return "gapClosed" if gap.low == gap.high else "gapFilled"
    return "repeated"


def advance(state: SwitchState, seq: int, timer_id: str | None) -> SwitchState:
    """The state after `seq` arrived; `timer_id` names the gap a jump opens. Used by decide and evolve."""
    outcome = classify(state, seq)
    if outcome == "inSequence":
        return SwitchState(seq, state.gaps, state.alerted)
    if outcome == "gapOpened":
        return SwitchState(seq, state.gaps + (Gap(state.high_water + 1, seq - 1, timer_id),), state.alerted)
    if outcome in ("gapFilled", "gapClosed"):
        gaps = []
        for gap in state.gaps:
            if gap.low <= seq <= gap.high:
                if gap.low < seq:
                    gaps.append(Gap(gap.low, seq - 1, gap.timer_id))
                if seq < gap.high:
                    gaps.append(Gap(seq + 1, gap.high, gap.timer_id))
            else:
                gaps.append(gap)
        return SwitchState(state.high_water, tuple(gaps), state.alerted)
    return state


def decide_sequence(state: SwitchState, event, policy, stream_id: str) -> Decision:
    p = event.payload
    seq = p["sequenceNumber"]
    outcome = classify(state, seq)
    timer, cancels, timer_id = None, (), None
    if outcome == "gapOpened":
        timer_id = derived_id(event.event_id, GAP_TIMER)
        timer = Timer(timer_id, event.event_time + timedelta(seconds=policy.sequence_gap_grace_seconds), GAP_TIMER,
                      p["switchId"], {"switchId": p["switchId"]})
    after = advance(state, seq, timer_id)
    if outcome in ("gapFilled", "gapClosed"):
        # A gap fully filled before its grace period ends needs no alert any more.
        still_open = {g.timer_id for g in after.gaps}
        cancels = tuple(sorted({g.timer_id for g in state.gaps} - still_open - state.alerted))
    body = {"switchId": p["switchId"], "sequenceNumber": seq, "usageId": p["usageId"]}
    if timer_id:
        body["gapTimerId"] = timer_id
        body["missingFrom"], body["missingTo"] = state.high_water + 1, seq - 1
    reasons = ("SEQUENCE_REPEATED",) if outcome == "repeated" else ()
    return Decision(RECORDED, ("CP3.SEQUENCE_GAP",), outcome, body, reasons, timer=timer,
                    cancels_timers=cancels, stream_id=stream_id)


def on_gap_timer(state: SwitchState, event, stream_id: str) -> list[Decision]:
    timer_id = event.payload["timerId"]
    missing = [g for g in state.gaps if g.timer_id == timer_id]
    if not missing or timer_id in state.alerted:
        return []
    ranges = [{"from": g.low, "to": g.high} for g in missing]
    return [Decision(GAP_ALERT, ("CP3.SEQUENCE_GAP",), "alert",
                     {"switchId": event.payload["data"]["switchId"], "missingRanges": ranges,
                      "missingCount": sum(g.high - g.low + 1 for g in missing), "timerId": timer_id},
                     ("SEQUENCE_GAP_OPEN_AFTER_GRACE",), stream_id=stream_id)]


def evolve_switch(state: SwitchState, decision: dict) -> SwitchState:
    kind, body = decision["decisionType"], decision["payload"]
    if kind == RECORDED:
        return advance(state, body["sequenceNumber"], body.get("gapTimerId"))
    if kind == GAP_ALERT:
        return SwitchState(state.high_water, state.gaps, state.alerted | {body["timerId"]})
    return state

