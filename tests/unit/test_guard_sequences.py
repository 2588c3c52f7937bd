"""CP3.SEQUENCE_GAP against a plain model: whatever order a switch's sequence numbers arrive in,
the recorded outcome, the gap timer asked for, the timers cancelled and the missing numbers are
what a set of missing numbers says they must be."""
from datetime import datetime, timezone
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from services.billing_guard.domain.sequences import SwitchState, decide_sequence, evolve_switch

from harness.input_events import Event

POLICY = SimpleNamespace(sequence_gap_grace_seconds=600)
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def arrivals():
    # Up to 60 numbers, shuffled, some repeated, some never arriving.
    return st.lists(st.integers(1, 60), min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_CP3_SEQUENCE_GAP_outcomes_timers_and_missing_numbers_follow_the_model(order):
    state = SwitchState()
    high, missing, timer_of = None, set(), {}  # the model: missing numbers and the timer of each
    for n, seq in enumerate(order):
        event = Event(f"e{n}", "billing.cdr.v1", T0, {"switchId": "SW1", "sequenceNumber": seq, "usageId": f"U{n}"})
        decision = decide_sequence(state, event, POLICY, "guard-switch-SW1")
        cancels = ()
        if high is None or seq == high + 1:
            expected = "inSequence"
            high = seq
        elif seq > high + 1:
            expected = "gapOpened"
            opened = set(range(high + 1, seq))
            missing |= opened
            timer_of.update({m: decision.payload["gapTimerId"] for m in opened})
            assert (decision.payload["missingFrom"], decision.payload["missingTo"]) == (high + 1, seq - 1)
            assert decision.timer is not None and decision.timer.timer_id == decision.payload["gapTimerId"]
            high = seq
        elif seq in missing:
            timer = timer_of[seq]
            neighbours_missing = (seq - 1 in missing) or (seq + 1 in missing)
            expected = "gapFilled" if neighbours_missing else "gapClosed"
            missing.discard(seq)
            if not any(timer_of[m] == timer for m in missing):
                cancels = (timer,)
        else:
            expected = "repeated"
        assert decision.outcome == expected, (order[: n + 1], decision.outcome)
        assert decision.cancels_timers == cancels
        assert ("gapTimerId" in decision.payload) == (expected == "gapOpened")
        state = evolve_switch(state, {"decisionType": decision.decision_type, "payload": decision.payload})
        assert {m for g in state.gaps for m in range(g.low, g.high + 1)} == missing
        assert all(timer_of[m] == g.timer_id for g in state.gaps for m in range(g.low, g.high + 1))
        assert [g.low for g in state.gaps] == sorted(g.low for g in state.gaps)
