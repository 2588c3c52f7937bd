"""A decision's payload is its envelope's payload, not a copy (services.common.decisions._payload):
nothing may change either once decided, neither its own fold nor any later decision or fold, as
the runtime hashes, stores and hands states on from them. The guard's month of charges, duplicates,
gaps, bills and a dispute, each stored decision compared at the end with what it was before its
fold. Pure."""
from __future__ import annotations

import copy
from datetime import timedelta

from harness.guard import T0, Guard, bill, cdr, dispute, fen, standard_rates, tariff


def test_A_REPLAY_no_fold_or_later_decision_changes_a_decided_payload():
    g = Guard()
    decided: list[tuple[dict, dict]] = []
    fold = g.decider.evolve

    def evolve(state, decision: dict):
        if "decisionId" in decision:  # a stored decision, as decided (a snapshot change has no id)
            decided.append((decision, copy.deepcopy(decision)))
        return fold(state, decision)

    g.decider.evolve = evolve
    g.feed(tariff(1, T0 - timedelta(days=400), rates=standard_rates(per_min=10, inc=60)))
    for day in range(40):  # across a cycle's close, with gaps in the switch's numbers
        start = T0 + timedelta(days=day)
        g.feed(cdr(account="A1", start=start, seconds=600 * (day + 1), switch="SW1", seq=2 * day + 1))
        g.feed(cdr(account="A2", start=start, switch="SW1", seq=2 * day + 3 if day % 7 else 2 * day + 2))
    for seq in (500, 501):  # a copy of one CDR
        g.feed(cdr(account="A1", start=T0 + timedelta(days=1), switch="SW1", seq=seq, origin="O-DUP", usage_id="U-D1"))
    g.feed(bill("A1", "B1", T0.replace(day=1), 12_000))
    g.feed(dispute("A1", "T1", "open", T0 + timedelta(days=41), billId="B1", disputedItems=["U-D1"],
                   disputedAmount=fen(300)))
    g.feed(dispute("A1", "T1", "resolve", T0 + timedelta(days=43), resolution="rejected", reason="verified"))
    assert {d["decisionType"] for d, _ in decided} >= {
        "guard.CdrRated", "guard.DuplicateCdrSuppressed", "guard.SwitchSequenceRecorded", "guard.BillCycleClosed",
        "guard.DisputeOpened"}
    assert [d for d, _ in decided] == [before for _, before in decided]
