"""Per-switch sequence tracking (CP3.SEQUENCE_GAP).

State is a high-water mark plus the open gaps, so it stays small however many CDRs a switch
sends: contiguous arrivals only move the mark. A gap opened by a jump asks for a timer at the
end of the grace period; the timer reports whatever of that gap is still missing.

The input is a note, not the CDR: CDRs are keyed by account, so a switch's numbers reach every
partition, and a state written from each of them had as many writers. The CDR's charge decision
(CdrRated, CdrUnrated or StaleCdrHeld, carrying its switchId and sequenceNumber) is republished
by the relay keyed by switch on the guard's repartition topic (schemas.registry.REPARTITION_TOPICS),
so each switch's state has one writer, the owner of that topic's partition.

Only what an auditor must see is stored: a gap opened (with its timer), a gap closed (the last
of its numbers arrived; its timer cancelled unless it already alerted) and the gap alert. A number
in sequence, or one that fills only part of a gap, changes the state alone (Decision.stored=False):
the runtime keeps it in the stream's snapshot (SwitchCodec), so one CDR stores one decision.

A number at or below the mark and in no open gap yields nothing at all. A redelivered note (the
relay is at-least-once, and repartition inputs are not deduplicated by id) and a repeated number
are the same to the switch; a true duplicate CDR is CP3.DEDUP's (DuplicateCdrSuppressed), which
is not routed here. Streams stored before notes existed hold one SwitchSequenceRecorded per CDR
(inSequence, gapFilled and repeated too); evolve_switch folds them to the same state.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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


def _closes_gap(gaps: tuple[Gap, ...], i: int) -> bool:
    """Whether the one number left in piece `i` is the last missing number of its gap (its timer):
    filling a gap splits it in place, so its pieces stay next to each other and only the
    neighbours of piece `i` can share its timer."""
    gap = gaps[i]
    if gap.low != gap.high:
        return False
    return not any(0 <= j < len(gaps) and gaps[j].timer_id == gap.timer_id for j in (i - 1, i + 1))


def classify(state: SwitchState, seq: int) -> str:
    if state.high_water is None or seq == state.high_water + 1:
        return "inSequence"
    if seq > state.high_water + 1:
        return "gapOpened"
    i = _gap_of(state.gaps, seq)
    if i is None:
        return "repeated"
    return "gapClosed" if _closes_gap(state.gaps, i) else "gapFilled"


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


def decide_sequence(state: SwitchState, event, policy, stream_id: str) -> list[Decision]:
    """The switch's sequence after one note: event.payload is a routed charge decision's envelope."""
    note = event.payload["payload"]
    switch, seq = note["switchId"], note.get("sequenceNumber")
    if seq is None:
        # A charge stored before charges carried their number (a relay replaying an old log): its
        # number was judged then, and recorded on the switch's stream.
        return []
    outcome = classify(state, seq)
    if outcome == "repeated":
        return []
    body = {"switchId": switch, "sequenceNumber": seq, "usageId": note["usageId"]}
    if outcome == "gapOpened":
        # Derived from the note's id (the charge's decisionId), so a replay asks for the same timer;
        # keyed by switch, so its wake-up reaches the partition that owns the switch.
        timer_id = derived_id(event.event_id, GAP_TIMER)
        timer = Timer(timer_id, event.event_time + timedelta(seconds=policy.sequence_gap_grace_seconds), GAP_TIMER,
                      switch, {"switchId": switch})
        body.update(gapTimerId=timer_id, missingFrom=state.high_water + 1, missingTo=seq - 1)
        return [Decision(SWITCH_SEQUENCE_RECORDED, ("CP3.SEQUENCE_GAP",), outcome, body, timer=timer,
                         stream_id=stream_id)]
    if outcome == "gapClosed":
        # A gap fully filled before its grace period ends needs no alert any more; one that
        # already alerted has no timer left to cancel, but its closing is still worth keeping.
        timer_id = state.gaps[_gap_of(state.gaps, seq)].timer_id
        cancels = (timer_id,) if timer_id not in state.alerted else ()
        return [Decision(SWITCH_SEQUENCE_RECORDED, ("CP3.SEQUENCE_GAP",), outcome, body, cancels_timers=cancels,
                         stream_id=stream_id)]
    return [Decision(SWITCH_SEQUENCE_RECORDED, ("CP3.SEQUENCE_GAP",), outcome, body, stream_id=stream_id,
                     stored=False)]


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


class SwitchCodec:
    """A switch's state as its snapshot (services.common.decider.SnapshotCodec): the mark, the open
    gaps in ascending order as [low, high, timerId], and the timers that already alerted, sorted so
    that one state always dumps to the same JSON."""

    def dump(self, state: SwitchState) -> dict[str, Any]:
        return {"highWater": state.high_water, "gaps": [[g.low, g.high, g.timer_id] for g in state.gaps],
                "alerted": sorted(state.alerted)}

    def load(self, data: dict[str, Any]) -> SwitchState:
        return SwitchState(data["highWater"], tuple(Gap(low, high, timer_id) for low, high, timer_id in data["gaps"]),
                           frozenset(data["alerted"]))


SWITCH_CODEC = SwitchCodec()
