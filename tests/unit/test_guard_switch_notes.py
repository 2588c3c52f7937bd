"""CP3.SEQUENCE_GAP through the repartition topic (issue 13): a CDR stores one decision, its charge;
the charge, routed keyed by switch, is the note the switch's owner judges the sequence from. Only a
gap opened or closed is stored; the rest changes the switch's snapshot alone. Pure."""
from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from schemas.registry import REPARTITION_TOPICS
from services.billing_guard.decider import GuardDecider
from services.billing_guard.domain.sequences import SWITCH_CODEC, Gap, SwitchState

from harness.guard import T0, Guard, cdr, note_for, of_type, standard_rates, tariff

ROUTED = REPARTITION_TOPICS["billing_guard"]
RECORDED = "guard.SwitchSequenceRecorded"


@pytest.fixture
def g():
    guard = Guard()
    guard.feed(tariff(1, T0 - timedelta(days=400), rates=standard_rates(per_min=10, inc=60)))
    return guard


def seqs(g: Guard, switch: str, *numbers: int) -> list[list[dict]]:
    return [g.feed(cdr(switch=switch, seq=n)) for n in numbers]


def test_CP3_SEQUENCE_GAP_an_in_sequence_cdr_stores_exactly_one_decision_its_charge(g):
    first, second = seqs(g, "SW1", 7, 8)
    assert [d["decisionType"] for d in second] == ["guard.CdrRated"]
    assert second[0]["payload"]["sequenceNumber"] == 8 and second[0]["payload"]["switchId"] == "SW1"
    assert [(c["outcome"], c["payload"]["sequenceNumber"]) for c in g.changes] == [("inSequence", 7), ("inSequence", 8)]
    assert g.states["guard-switch-SW1"] == SwitchState(8)
    assert not any(d["streamId"] == "guard-switch-SW1" for d in g.log)


def test_CP3_SEQUENCE_GAP_a_cdr_no_longer_reads_its_switch():
    event = cdr(switch="SW1", seq=1)
    assert not any(s.startswith("guard-switch-") for s in GuardDecider().stream_ids(event))
    note = note_for({"decisionId": "d-1", "businessTime": T0.isoformat(), "correlationId": None,
                     "service": "billing_guard", "causedBy": ["cdr-1"],
                     "payload": {"switchId": "SW1", "sequenceNumber": 1, "usageId": "U1"}})
    assert GuardDecider().stream_ids(note) == ("guard-switch-SW1",)
    assert GuardDecider().partition_key(note) == "SW1"


def test_CP3_SEQUENCE_GAP_every_routed_decision_carries_its_switch_and_number(g):
    g.feed(cdr(switch="SW1", seq=3, start=T0, received=T0 + timedelta(days=31 * 5 + 2)))  # stale
    g.feed(cdr(switch="SW1", seq=4, account="A2", dest="roaming", usage="data", volume=10))
    routed = [d for d in g.log if d["decisionType"] in ROUTED.decision_types]
    assert {d["decisionType"] for d in routed} == {"guard.StaleCdrHeld", "guard.CdrRated"}
    assert [(d["payload"]["switchId"], d["payload"]["sequenceNumber"]) for d in routed] == [("SW1", 3), ("SW1", 4)]
    assert [n.event_id for n in g.notes] == [d["decisionId"] for d in routed]


def test_CP3_SEQUENCE_GAP_gap_opened_sets_a_timer_filled_is_not_stored_closed_is_stored_and_cancels(g):
    seqs(g, "SW2", 1)
    [opened] = of_type(seqs(g, "SW2", 5)[0], RECORDED)
    assert opened["outcome"] == "gapOpened" and opened["streamId"] == "guard-switch-SW2"
    assert (opened["payload"]["missingFrom"], opened["payload"]["missingTo"]) == (2, 4)
    timer = opened["payload"]["timer"]
    assert timer["key"] == "SW2" and timer["timerId"] == opened["payload"]["gapTimerId"]
    filled = seqs(g, "SW2", 3, 2)
    assert [[d["decisionType"] for d in out] for out in filled] == [["guard.CdrRated"], ["guard.CdrRated"]]
    assert [c["outcome"] for c in g.changes[-2:]] == ["gapFilled", "gapFilled"]
    [closed] = of_type(seqs(g, "SW2", 4)[0], RECORDED)
    assert closed["outcome"] == "gapClosed" and closed["payload"]["cancelsTimers"] == [timer["timerId"]]
    assert g.states["guard-switch-SW2"] == SwitchState(5)
    assert g.fire_due_timers(T0 + timedelta(days=30)) == []


def test_CP3_SEQUENCE_GAP_a_piece_emptied_while_its_gap_still_misses_numbers_is_only_a_fill(g):
    seqs(g, "SW3", 1, 5, 3)  # gap 2..4 split into 2 and 4
    assert [d["decisionType"] for d in seqs(g, "SW3", 2)[0]] == ["guard.CdrRated"]
    assert g.changes[-1]["outcome"] == "gapFilled"
    [closed] = of_type(seqs(g, "SW3", 4)[0], RECORDED)
    assert closed["outcome"] == "gapClosed" and closed["payload"]["cancelsTimers"]


def test_CP3_SEQUENCE_GAP_a_redelivered_note_changes_nothing():
    g = Guard(route=False)
    g.feed(tariff(1, T0 - timedelta(days=400)))
    for n in (1, 4, 2, 3, 4):
        g.feed(cdr(switch="SW4", seq=n))
    for note in g.notes:
        g.feed(note)
    after, stored, changes = g.states["guard-switch-SW4"], len(g.log), len(g.changes)
    for note in g.notes:  # the relay's at-least-once delivery: every note again, in order
        assert g.feed(note) == []
    assert (g.states["guard-switch-SW4"], len(g.log), len(g.changes)) == (after, stored, changes)
    assert after == SwitchState(4)


def test_CP3_SEQUENCE_GAP_a_repeated_number_yields_nothing(g):
    seqs(g, "SW5", 1, 2, 3)
    before = (g.states["guard-switch-SW5"], len(g.changes))
    out = g.feed(cdr(switch="SW5", seq=2))  # another origin id, so no CP3.DEDUP duplicate
    assert [d["decisionType"] for d in out] == ["guard.CdrRated"]
    assert (g.states["guard-switch-SW5"], len(g.changes)) == before


def test_CP3_DEDUP_a_suppressed_copy_is_not_routed_to_its_switch(g):
    first = cdr(switch="SW6", origin="O-1", seq=1)
    g.feed(first)
    out = g.feed(cdr(switch="SW6", origin="O-1", seq=1))
    assert [d["decisionType"] for d in out] == ["guard.DuplicateCdrSuppressed"]
    assert out[0]["payload"]["sequenceNumber"] == 1 and len(g.notes) == 1


def legacy(seq: int, outcome: str, **extra) -> dict:
    """A SwitchSequenceRecorded as stored for every CDR before issue 13."""
    return {"decisionType": RECORDED, "outcome": outcome, "streamId": "guard-switch-SW7",
            "payload": {"switchId": "SW7", "sequenceNumber": seq, "usageId": f"U-old-{seq}", **extra}}


LEGACY = [legacy(1, "inSequence"), legacy(2, "inSequence"),
          legacy(6, "gapOpened", gapTimerId="T-old", missingFrom=3, missingTo=5),
          legacy(4, "gapFilled"), legacy(2, "repeated")]


def test_CP3_SEQUENCE_GAP_a_legacy_store_folds_to_the_state_notes_reach_and_notes_carry_on_from_it(g):
    decider = GuardDecider()
    folded = decider.initial_state("guard-switch-SW7")
    for event in LEGACY:  # a stream with no snapshot yet is folded from its stored events
        folded = decider.evolve(folded, event)
    assert folded == SwitchState(6, (Gap(3, 3, "T-old"), Gap(5, 5, "T-old")))
    seqs(g, "SW7", 1, 2, 6, 4, 2)  # the same numbers as notes: the same state, under the note's timer
    timer = g.states["guard-switch-SW7"].gaps[0].timer_id
    assert g.states["guard-switch-SW7"] == SwitchState(6, (Gap(3, 3, timer), Gap(5, 5, timer)))
    g.states["guard-switch-SW7"] = folded
    assert [d["decisionType"] for d in seqs(g, "SW7", 3)[0]] == ["guard.CdrRated"]
    [closed] = of_type(seqs(g, "SW7", 5)[0], RECORDED)
    assert closed["payload"]["cancelsTimers"] == ["T-old"] and g.states["guard-switch-SW7"] == SwitchState(6)
    alerted = decider.evolve(folded, {"decisionType": "guard.SequenceGapAlert", "payload": {"timerId": "T-old"}})
    assert alerted.alerted == {"T-old"}


def test_CP3_SEQUENCE_GAP_the_switch_snapshot_round_trips_through_json():
    decider = GuardDecider()
    codec = decider.snapshot_codec("guard-switch-SW1")
    assert codec is SWITCH_CODEC and decider.snapshot_codec("guard-account-A1") is None
    assert decider.snapshot_codec("guard-tariffs") is None
    state = SwitchState(41, (Gap(3, 3, "T-b"), Gap(10, 12, "T-a"), Gap(30, 40, None)), frozenset({"T-z", "T-a"}))
    for s in (SwitchState(), state):
        data = orjson.loads(orjson.dumps(codec.dump(s)))
        assert codec.load(data) == s
    assert codec.dump(state) == {"highWater": 41, "gaps": [[3, 3, "T-b"], [10, 12, "T-a"], [30, 40, None]],
                                 "alerted": ["T-a", "T-z"]}


def test_CP3_SEQUENCE_GAP_the_alert_after_the_grace_period_names_the_missing_range(g):
    seqs(g, "SW8", 10, 15, 12)
    alerts = of_type(g.fire_due_timers(T0 + timedelta(days=2, hours=2)), "guard.SequenceGapAlert")
    [alert] = alerts
    assert alert["payload"]["missingRanges"] == [{"from": 11, "to": 11}, {"from": 13, "to": 14}]
    assert alert["payload"]["missingCount"] == 3 and alert["streamId"] == "guard-switch-SW8"
    assert alert["ruleIds"] == ["CP3.SEQUENCE_GAP"] and alert["reasonCodes"] == ["SEQUENCE_GAP_OPEN_AFTER_GRACE"]
    # Closed after it alerted: still stored, but no timer is left to cancel.
    seqs(g, "SW8", 11, 13)
    [closed] = of_type(seqs(g, "SW8", 14)[0], RECORDED)
    assert closed["outcome"] == "gapClosed" and "cancelsTimers" not in closed["payload"]


def test_CP3_SEQUENCE_GAP_a_charge_stored_before_it_carried_its_number_is_no_note_to_judge(g):
    seqs(g, "SW9", 1)
    old = {**g.log[-1], "payload": {k: v for k, v in g.log[-1]["payload"].items() if k != "sequenceNumber"}}
    before = (g.states["guard-switch-SW9"], len(g.changes))
    assert g.feed(note_for(old)) == []
    assert (g.states["guard-switch-SW9"], len(g.changes)) == before
