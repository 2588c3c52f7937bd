"""CP3.SEQUENCE_GAP against a plain model: whatever order a switch's notes (its CDRs' routed
charge decisions) arrive in, the outcome, whether it is stored, the gap timer asked for, the
timers cancelled and the missing numbers are what a set of missing numbers says they must be;
a note delivered again changes nothing, and the state survives its snapshot."""
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
from hypothesis import given, settings, strategies as st

from schemas.registry import REPARTITION_TOPICS
from services.billing_guard.domain.sequences import SWITCH_CODEC, SwitchState, decide_sequence, evolve_switch

from harness.input_events import Event

POLICY = SimpleNamespace(sequence_gap_grace_seconds=600)
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
NOTES = REPARTITION_TOPICS["billing_guard"].topic


def arrivals():
    # Up to 60 numbers, shuffled, some repeated, some never arriving.
    return st.lists(st.integers(1, 60), min_size=1, max_size=120)


def note(n: int, seq: int) -> Event:
    """The n-th note: a CdrRated envelope as the repartition topic carries it (its decisionId is the id)."""
    envelope = {"decisionId": f"d{n}", "decisionType": "guard.CdrRated", "businessTime": T0.isoformat(),
                "payload": {"switchId": "SW1", "sequenceNumber": seq, "usageId": f"U{n}"}}
    return Event(f"d{n}", NOTES, T0, envelope)


def expected_outcome(seq: int, high, missing: set, timer_of: dict) -> tuple[str, tuple]:
    """The model's outcome and cancelled timers (no timer has alerted here)."""
    if high is None or seq == high + 1:
        return "inSequence", ()
    if seq > high + 1:
        return "gapOpened", ()
    if seq not in missing:
        return "repeated", ()
    rest = {m for m in missing if timer_of[m] == timer_of[seq]} - {seq}
    return ("gapFilled", ()) if rest else ("gapClosed", (timer_of[seq],))


def fold(state: SwitchState, decisions) -> SwitchState:
    for d in decisions:
        state = evolve_switch(state, {"decisionType": d.decision_type, "outcome": d.outcome, "payload": d.payload})
    return SWITCH_CODEC.load(orjson.loads(orjson.dumps(SWITCH_CODEC.dump(state))))


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_CP3_SEQUENCE_GAP_outcomes_timers_and_missing_numbers_follow_the_model(order):
    state = SwitchState()
    high, missing, timer_of = None, set(), {}  # the model: missing numbers and the timer of each
    for n, seq in enumerate(order):
        decisions = decide_sequence(state, note(n, seq), POLICY, "guard-switch-SW1")
        expected, cancels = expected_outcome(seq, high, missing, timer_of)
        if expected == "repeated":
            assert decisions == [], (order[: n + 1], decisions)
        else:
            (decision,) = decisions
            assert decision.outcome == expected, (order[: n + 1], decision.outcome)
            # Stored: only a gap opened or closed; the rest changes the snapshot alone.
            assert decision.stored == (expected in ("gapOpened", "gapClosed"))
            assert decision.cancels_timers == cancels
            assert ("gapTimerId" in decision.payload) == (expected == "gapOpened")
        if expected == "gapOpened":
            assert (decision.payload["missingFrom"], decision.payload["missingTo"]) == (high + 1, seq - 1)
            assert decision.timer is not None and decision.timer.timer_id == decision.payload["gapTimerId"]
            assert decision.timer.key == "SW1"
            opened = set(range(high + 1, seq))
            missing |= opened
            timer_of.update({m: decision.payload["gapTimerId"] for m in opened})
        high = seq if high is None or seq > high else high
        missing.discard(seq)
        state = fold(state, decisions)
        assert decide_sequence(state, note(n, seq), POLICY, "guard-switch-SW1") == []  # redelivered
        assert {m for g in state.gaps for m in range(g.low, g.high + 1)} == missing
        assert all(timer_of[m] == g.timer_id for g in state.gaps for m in range(g.low, g.high + 1))
        assert [g.low for g in state.gaps] == sorted(g.low for g in state.gaps)
