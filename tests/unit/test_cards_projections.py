"""Projections derived from stored decisions alone (C.DISPOSAL, C.STOCK, C.STATES, A.REPLAY)."""
from __future__ import annotations

from datetime import timedelta

from services.cards.domain.projections import (
    CardsProjection, card_balances, disposal_list, outlet_stock, value_ledger,
)

from harness.cards import T0, World, activated, batch, blocked, complaint, expired, later, topped_up, used


def scenario() -> World:
    world = World()
    world.feed(batch("B1", "O1", ["A1", "A2", "A3", "A4"], face=5_000))
    world.feed(batch("B2", "O1", ["H1", "H2"], face=10_000))
    world.feed(batch("B3", "O2", ["C1", "C2", "C3"], face=3_000, expires=T0 + timedelta(days=60)))
    world.feed(activated("A1", "O1"), activated("C1", "O2"), activated("H1", "O1"))
    world.feed(used("A1", 1_500, later(1)), topped_up("C1", 500, later(2)), used("H1", 400, later(3)))
    world.feed(complaint("A1", "O2", later(4), complaint_id="CMP-A1", wrongly=500))  # replaced from O2's stock
    world.feed(complaint("H1", "O1", later(5), complaint_id="CMP-H1"))
    world.feed(complaint("A1", "O1", later(6)))  # repeated: nothing moves
    world.feed(used("A1", 10, later(7)))  # void reuse: refused
    world.feed(blocked("A4", later(8), outlet="O1"), expired("C1", later(9)))
    return world


def test_C_DISPOSAL_voided_cards_are_listed_per_replacing_outlet():
    world = scenario()
    disposal = disposal_list(world.log)
    assert {o: [r["cardSerial"] for r in rows] for o, rows in disposal.items()} == {"O1": ["H1"], "O2": ["A1"]}
    [a1] = disposal["O2"]
    assert a1["complaintId"] == "CMP-A1" and a1["batchId"] == "B1"
    assert a1["transferredValue"]["amountMinor"] == 4_000
    assert a1["replacedByCardSerial"] in ("C2", "C3")


def test_C_STOCK_cards_on_hand_per_outlet_and_face_value():
    world = scenario()
    # O1: A2, A3 (A1 sold, A4 blocked); H2 drawn for H1's replacement. O2: one of C2/C3 drawn for A1.
    assert outlet_stock(world.log) == {"O1": {5_000: 2}, "O2": {3_000: 1}}
    assert outlet_stock(world.log, at=T0 + timedelta(days=61)) == {"O1": {5_000: 2}}
    # the projection agrees with what each outlet stream would still hand out
    assert sum(outlet_stock(world.log)["O1"].values()) == world.outlet("O1").on_hand()


def test_C_STATES_value_ledger_balances_and_card_balances_follow_the_decisions():
    world = scenario()
    ledger = value_ledger(world.log)
    assert ledger.balanced
    assert ledger.sold == 5_000 + 3_000 + 10_000 and ledger.topped_up == 500
    assert ledger.used == 1_900 and ledger.fault_credits == 500 and ledger.forfeited == 3_500
    assert ledger.in_transit == 4_000 + 9_600 and ledger.on_cards == 0
    new = world.of_type("cards.CardReplaced")[1]["payload"]["newCardSerial"]
    world.feed(activated(new, "O1", later(10)))
    ledger = value_ledger(world.log)
    assert ledger.balanced and ledger.in_transit == 4_000 and ledger.on_cards == 9_600
    assert card_balances(world.log)[new] == 9_600


def test_projections_are_rebuilt_identically_and_ignore_other_services():
    world = scenario()
    foreign = {"service": "dunning", "decisionType": "dunning.ReminderScheduled", "payload": {}}
    once, again = CardsProjection(), CardsProjection()
    for d in world.log:
        once.apply(d)
    for d in [foreign, *world.log, foreign]:
        again.apply(d)
    assert (once.ledger(), once.stock(), once.disposals()) == (again.ledger(), again.stock(), again.disposals())
