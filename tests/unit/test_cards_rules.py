"""Prepaid-card rules on the pure decider (SPEC.md section 4): one group of tests per rule id."""
from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.decision_types import cards as cards_types
from services.cards.domain import state as s
from services.cards.domain.state import card_stream, outlet_stream

from harness.cards import (
    EXPIRES, T0, World, activated, batch, blocked, complaint, expired, later, serials, topped_up, used,
)


def stocked(n: int = 10, outlet: str = "O1", face: int = 5_000, prefix: str | None = None, **kw) -> tuple[World, list[str]]:
    world = World()
    cards = serials(prefix or f"{outlet}-C", n)
    world.feed(batch(f"B-{outlet}", outlet, cards, face=face, **kw))
    return world, cards


def sold(world: World, serial: str, outlet: str = "O1", at=T0) -> None:
    [card, stock] = world.feed(activated(serial, outlet, at))
    assert card["decisionType"] == cards_types.CARD_ACTIVATED and stock["decisionType"] == cards_types.STOCK_SOLD


def types(decisions: list[dict]) -> list[str]:
    return [d["decisionType"] for d in decisions]


# --- C.STATES ------------------------------------------------------------------------------

def test_C_STATES_issue_activate_use_until_exhausted_then_top_up():
    world, cards = stocked(3)
    card = cards[0]
    assert world.card(card).status == s.ISSUED and world.card(card).balance == 0
    assert world.outlet("O1").on_hand() == 3
    sold(world, card)
    assert (world.card(card).status, world.card(card).balance) == (s.ACTIVE, 5_000)
    assert world.outlet("O1").on_hand() == 2
    [d] = world.feed(used(card, 1_200))
    assert d["decisionType"] == cards_types.USAGE_RECORDED and d["payload"]["balanceAfter"]["amountMinor"] == 3_800
    assert "C.STATES" in d["ruleIds"]
    world.feed(used(card, 3_800))
    assert (world.card(card).status, world.card(card).balance) == (s.EXHAUSTED, 0)
    [d] = world.feed(used(card, 1))
    assert d["decisionType"] == cards_types.USAGE_REFUSED and d["reasonCodes"] == ["insufficientValue"]
    [d] = world.feed(topped_up(card, 2_000))
    assert d["decisionType"] == cards_types.TOP_UP_RECORDED
    assert (world.card(card).status, world.card(card).balance) == (s.ACTIVE, 2_000)


def test_C_STATES_usage_above_the_remaining_value_is_refused_whole():
    world, cards = stocked(1)
    sold(world, cards[0])
    [d] = world.feed(used(cards[0], 5_001))
    assert d["decisionType"] == cards_types.USAGE_REFUSED and d["reasonCodes"] == ["insufficientValue"]
    assert world.card(cards[0]).balance == 5_000


def test_C_STATES_a_card_in_stock_cannot_be_used_or_topped_up():
    world, cards = stocked(1)
    [u] = world.feed(used(cards[0], 100))
    [t] = world.feed(topped_up(cards[0], 100))
    assert u["reasonCodes"] == ["cardNotActivated"] and t["reasonCodes"] == ["cardNotActivated"]


def test_C_STATES_unknown_card_usage_is_refused_and_its_activation_dead_lettered():
    world = World()
    [d] = world.feed(used("NOPE-1", 100))
    assert d["decisionType"] == cards_types.USAGE_REFUSED and d["reasonCodes"] == ["unknownCard"]
    assert world.feed(activated("NOPE-1", "O1")) == []
    [(_, rejected)] = world.dead_letters
    assert rejected.code == "C.STATES" and "batchIssued" in rejected.message


def test_C_STATES_activation_must_name_the_outlet_holding_the_card():
    world, cards = stocked(2)
    world.feed(activated(cards[0], None), activated(cards[1], "O2"))
    assert [r.code for _, r in world.dead_letters] == ["C.STOCK", "C.STOCK"]
    assert world.card(cards[0]).status == s.ISSUED and world.outlet("O1").on_hand() == 2


def test_C_STATES_repeated_activation_adds_no_value():
    world, cards = stocked(1)
    sold(world, cards[0])
    [d] = world.feed(activated(cards[0], "O1"))
    assert d["decisionType"] == cards_types.ACTIVATION_IGNORED and world.card(cards[0]).balance == 5_000


def test_C_STATES_blocked_card_keeps_its_value_frozen_and_refuses_use():
    world, cards = stocked(1)
    sold(world, cards[0])
    [d] = world.feed(blocked(cards[0]))
    assert d["decisionType"] == cards_types.CARD_BLOCKED and d["payload"]["frozenValue"]["amountMinor"] == 5_000
    [u] = world.feed(used(cards[0], 10))
    assert u["reasonCodes"] == ["cardBlocked"] and world.card(cards[0]).balance == 5_000


def test_C_STATES_expiry_by_event_and_by_date_forfeits_the_value():
    world, cards = stocked(2, expires=T0 + timedelta(days=100))
    sold(world, cards[0])
    sold(world, cards[1])
    [d] = world.feed(expired(cards[0], later(5)))
    assert d["decisionType"] == cards_types.CARD_EXPIRED and d["payload"]["forfeitedValue"]["amountMinor"] == 5_000
    after = T0 + timedelta(days=101)
    expiry, refusal = world.feed(used(cards[1], 10, after))
    assert expiry["decisionType"] == cards_types.CARD_EXPIRED and expiry["reasonCodes"] == ["pastExpiresAt"]
    assert refusal["reasonCodes"] == ["cardExpired"]
    assert world.card(cards[1]).balance == 0


def test_C_STATES_a_top_up_may_extend_validity():
    world, cards = stocked(1, expires=T0 + timedelta(days=10))
    sold(world, cards[0])
    world.feed(topped_up(cards[0], 100, later(1), expires=T0 + timedelta(days=400)))
    world.feed(used(cards[0], 100, T0 + timedelta(days=200)))
    assert world.card(cards[0]).balance == 5_000


def test_C_STATES_a_serial_is_issued_once():
    world, cards = stocked(2)
    [received] = world.feed(batch("B-again", "O2", [cards[0], "NEW-1", "NEW-1"]))[:1]
    assert received["payload"]["cardSerials"] == ["NEW-1"]
    assert received["payload"]["rejectedCount"] == 2
    assert set(received["reasonCodes"]) == {"alreadyIssued", "duplicateInBatch"}
    assert world.card(cards[0]).outlet_id == "O1" and world.outlet("O2").on_hand() == 1


def test_C_STATES_remaining_value_is_derived_from_the_stored_decisions_alone():
    world, cards = stocked(3)
    sold(world, cards[0])
    world.feed(used(cards[0], 700), topped_up(cards[0], 300), complaint(cards[0], "O1"))
    assert world.replayed() == {sid: world.states[sid] for sid in world.streams}


# --- C.REPLACE_NOW ---------------------------------------------------------------------------

def test_C_REPLACE_NOW_voids_the_old_card_and_draws_a_stock_card_in_one_decision():
    world, cards = stocked(5)
    sold(world, cards[0])
    world.feed(used(cards[0], 320))
    decisions = world.feed(complaint(cards[0], "O1", wrongly=320, complaint_id="CMP-1"))
    assert types(decisions) == [cards_types.CARD_REPLACED, cards_types.REPLACEMENT_DRAWN]
    replaced, drawn = decisions
    assert replaced["streamId"] == card_stream(cards[0]) and drawn["streamId"] == outlet_stream("O1")
    assert replaced["causedBy"] == drawn["causedBy"]  # one input, one atomic decision
    assert {"C.REPLACE_NOW", "C.ONCE"} <= set(replaced["ruleIds"])
    body = replaced["payload"]
    assert body["remainingValue"]["amountMinor"] == 4_680
    assert body["wronglyConsumed"]["amountMinor"] == 320
    assert body["transferredValue"]["amountMinor"] == 5_000
    new = body["newCardSerial"]
    assert new in cards[1:] and drawn["payload"]["newCardSerial"] == new
    assert world.card(cards[0]).status == s.VOID and world.card(cards[0]).balance == 0
    assert world.outlet("O1").pending["CMP-1"].value == 5_000 and not world.outlet("O1").in_stock(new)


def test_C_REPLACE_NOW_the_new_card_is_activated_at_the_counter_with_the_carried_value():
    world, cards = stocked(5)
    sold(world, cards[0])
    world.feed(used(cards[0], 1_000))
    new = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]["payload"]["newCardSerial"]
    [u] = world.feed(used(new, 10))  # before the counter activates it: nothing to spend yet
    assert u["reasonCodes"] == ["cardNotActivated"]
    card, handed = world.feed(activated(new, "O1"))
    assert card["decisionType"] == cards_types.REPLACEMENT_CARD_ACTIVATED and handed["decisionType"] == cards_types.REPLACEMENT_HANDED_OVER
    assert card["payload"]["balanceAfter"]["amountMinor"] == 4_000  # not its 5,000 face value
    assert world.card(new).replaces == cards[0] and world.outlet("O1").pending == {}
    [d] = world.feed(used(new, 4_000))
    assert d["decisionType"] == cards_types.USAGE_RECORDED


def test_C_REPLACE_NOW_a_stock_card_already_sold_is_never_drawn():
    world, cards = stocked(2)
    sold(world, cards[0])
    sold(world, cards[1])
    decisions = world.feed(complaint(cards[0], "O1"))
    assert types(decisions) == [cards_types.COMPLAINT_ESCALATED, cards_types.STOCK_ALERT]


def test_C_REPLACE_NOW_fault_credit_is_bounded_by_usage_and_policy():
    world, cards = stocked(6)
    for card in cards[:3]:
        sold(world, card)
    world.feed(used(cards[0], 100), used(cards[1], 5_000))
    above_usage = world.feed(complaint(cards[0], "O1", wrongly=200))[0]
    assert above_usage["payload"]["wronglyConsumed"]["amountMinor"] == 0
    assert above_usage["payload"]["transferredValue"]["amountMinor"] == 4_900
    assert above_usage["reasonCodes"] == ["faultCreditReferred", "faultCreditAboveUsage"]
    world.feed(topped_up(cards[2], 20_000), used(cards[2], 20_000))
    above_limit = world.feed(complaint(cards[2], "O1", wrongly=15_000))[0]
    assert above_limit["payload"]["faultCreditReferred"]["amountMinor"] == 15_000
    assert above_limit["reasonCodes"] == ["faultCreditReferred", "faultCreditAboveLimit"]
    assert above_limit["payload"]["transferredValue"]["amountMinor"] == 5_000


def test_C_REPLACE_NOW_prefers_the_old_face_value_and_skips_cards_about_to_expire():
    world = World()
    world.feed(batch("B-50", "O1", ["A50-1", "A50-2"], face=5_000))
    world.feed(batch("B-100", "O1", ["A100-1"], face=10_000))
    world.feed(batch("B-soon", "O1", ["S50-1"], face=5_000, expires=T0 + timedelta(days=3)))
    sold(world, "A50-1")
    assert world.feed(complaint("A50-1", "O1"))[0]["payload"]["newCardSerial"] == "A50-2"
    world.feed(activated("A50-2", "O1"))
    assert world.feed(complaint("A50-2", "O1"))[0]["payload"]["newCardSerial"] == "A100-1"


def test_C_REPLACE_NOW_a_drawn_card_found_blocked_is_redrawn_atomically_at_the_counter():
    world, cards = stocked(4)
    sold(world, cards[0])
    first = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]["payload"]["newCardSerial"]
    world.feed(blocked(first))  # reported stolen without naming the outlet: the outlet does not know yet
    refused, redrawn = world.feed(activated(first, "O1"))
    assert refused["decisionType"] == cards_types.ACTIVATION_REFUSED and redrawn["decisionType"] == cards_types.REPLACEMENT_REDRAWN
    second = redrawn["payload"]["newCardSerial"]
    assert second != first and redrawn["payload"]["previousCardSerial"] == first
    card, _ = world.feed(activated(second, "O1"))
    assert card["decisionType"] == cards_types.REPLACEMENT_CARD_ACTIVATED and card["payload"]["balanceAfter"]["amountMinor"] == 5_000


def test_C_REPLACE_NOW_a_card_blocked_at_its_outlet_leaves_stock_and_its_pending_replacement_moves():
    world, cards = stocked(4)
    sold(world, cards[0])
    first = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]["payload"]["newCardSerial"]
    block, redrawn = world.feed(blocked(first, outlet="O1"))
    assert block["decisionType"] == cards_types.CARD_BLOCKED and redrawn["decisionType"] == cards_types.REPLACEMENT_REDRAWN
    stock_card = next(c for c in cards[1:] if c not in (first, redrawn["payload"]["newCardSerial"]))
    _, off = world.feed(blocked(stock_card, outlet="O1"))
    assert off["decisionType"] == cards_types.STOCK_WRITTEN_OFF and world.outlet("O1").on_hand() == 0


# --- C.ONCE --------------------------------------------------------------------------------

def test_C_ONCE_a_repeated_complaint_returns_the_original_replacement():
    world, cards = stocked(5)
    sold(world, cards[0])
    original = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]
    for outlet, complaint_id in (("O1", "CMP-1"), ("O1", "CMP-2"), ("O2", "CMP-3")):
        [again] = world.feed(complaint(cards[0], outlet, complaint_id=complaint_id, wrongly=0))
        assert again["decisionType"] == cards_types.REPLACEMENT_RETURNED and again["outcome"] == "alreadyReplaced"
        assert again["ruleIds"] == ["C.ONCE"]
        assert again["payload"]["newCardSerial"] == original["payload"]["newCardSerial"]
        assert again["payload"]["originalComplaintId"] == "CMP-1"
    assert len(world.of_type(cards_types.CARD_REPLACED)) == 1 and len(world.of_type(cards_types.REPLACEMENT_DRAWN)) == 1
    assert world.outlet("O1").on_hand() == 3


def test_C_ONCE_the_replacement_card_can_itself_be_replaced_once():
    world, cards = stocked(5)
    sold(world, cards[0])
    new = world.feed(complaint(cards[0], "O1"))[0]["payload"]["newCardSerial"]
    world.feed(activated(new, "O1"))
    newer = world.feed(complaint(new, "O1"))[0]["payload"]["newCardSerial"]
    assert newer not in (cards[0], new)
    assert types(world.feed(complaint(new, "O1"))) == [cards_types.REPLACEMENT_RETURNED]


# --- C.VOID_IS_FINAL -----------------------------------------------------------------------

@pytest.mark.parametrize("attempt", ["used", "toppedUp", "activated"])
def test_C_VOID_IS_FINAL_any_later_use_of_a_voided_card_is_refused_with_a_fraud_alert(attempt):
    world, cards = stocked(3)
    sold(world, cards[0])
    new = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]["payload"]["newCardSerial"]
    e = {"used": used(cards[0], 100), "toppedUp": topped_up(cards[0], 100), "activated": activated(cards[0], "O1")}[attempt]
    [d] = world.feed(e)
    assert d["decisionType"] == cards_types.VOID_CARD_USE_REFUSED and d["outcome"] == "fraudAlert"
    assert d["ruleIds"] == ["C.VOID_IS_FINAL"] and d["reasonCodes"] == ["cardVoid"]
    assert d["payload"]["replacedByCardSerial"] == new and d["payload"]["action"] == attempt
    assert world.card(cards[0]).status == s.VOID and world.card(cards[0]).balance == 0


def test_C_VOID_IS_FINAL_block_and_expiry_do_not_revive_a_voided_card():
    world, cards = stocked(3)
    sold(world, cards[0])
    world.feed(complaint(cards[0], "O1"))
    for e in (blocked(cards[0]), expired(cards[0])):
        [d] = world.feed(e)
        assert d["decisionType"] == cards_types.INVENTORY_EVENT_IGNORED and d["reasonCodes"] == ["cardVoid"]
    assert world.card(cards[0]).status == s.VOID


# --- C.NOT_ELIGIBLE ------------------------------------------------------------------------

def test_C_NOT_ELIGIBLE_exhausted_expired_blocked_unknown_and_unsold_cards_are_referred():
    world, cards = stocked(10, expires=T0 + timedelta(days=100))
    for card in cards[:3]:
        sold(world, card)
    world.feed(used(cards[0], 5_000), blocked(cards[1]))
    after = T0 + timedelta(days=101)
    cases = {
        cards[0]: ["cardExhausted"], cards[1]: ["cardBlocked"], "NOT-A-CARD": ["unknownCard"],
        cards[3]: ["cardNotActivated"],
    }
    for serial, reasons in cases.items():
        [d] = world.feed(complaint(serial, "O1", at=later(10)))
        assert d["decisionType"] == cards_types.COMPLAINT_REFERRED and d["outcome"] == "referred"
        assert d["ruleIds"] == ["C.NOT_ELIGIBLE"] and d["reasonCodes"] == reasons
    expiry, referral = world.feed(complaint(cards[2], "O1", at=after))
    assert expiry["decisionType"] == cards_types.CARD_EXPIRED and referral["reasonCodes"] == ["cardExpired"]
    assert world.of_type(cards_types.CARD_REPLACED) == []


def test_C_NOT_ELIGIBLE_complaints_without_a_charge_related_quality_problem_are_referred():
    world, cards = stocked(5)
    sold(world, cards[0])
    [a] = world.feed(complaint(cards[0], "O1", charge_related=False))
    [b] = world.feed(complaint(cards[0], "O1", problem="other"))
    assert a["reasonCodes"] == ["notChargeRelated"] and b["reasonCodes"] == ["problemNotReplaceable"]
    assert world.card(cards[0]).status == s.ACTIVE and world.card(cards[0]).balance == 5_000
    assert a["payload"]["remainingValue"]["amountMinor"] == 5_000


# --- C.STOCK -------------------------------------------------------------------------------

def test_C_STOCK_an_outlet_without_stock_escalates_with_an_alert_and_keeps_the_card():
    world, cards = stocked(2)
    sold(world, cards[0])
    escalated, alert = world.feed(complaint(cards[0], "O-EMPTY", complaint_id="CMP-1"))
    assert escalated["decisionType"] == cards_types.COMPLAINT_ESCALATED and escalated["outcome"] == "escalated"
    assert escalated["ruleIds"] == ["C.STOCK"] and escalated["reasonCodes"] == ["noStock"]
    assert alert["decisionType"] == cards_types.STOCK_ALERT and alert["outcome"] == "alert"
    assert alert["streamId"] == outlet_stream("O-EMPTY") and alert["payload"]["onHand"] == 0
    assert world.card(cards[0]).status == s.ACTIVE and world.card(cards[0]).balance == 5_000
    # stock arrives; the customer comes back: now replaced
    world.feed(batch("B-late", "O-EMPTY", ["LATE-1"]))
    assert types(world.feed(complaint(cards[0], "O-EMPTY"))) == [cards_types.CARD_REPLACED, cards_types.REPLACEMENT_DRAWN]


def test_C_STOCK_a_redraw_without_stock_escalates_and_new_stock_serves_it_first():
    world, cards = stocked(2)
    sold(world, cards[0])
    first = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))[0]["payload"]["newCardSerial"]
    world.feed(blocked(first))
    refused, escalated = world.feed(activated(first, "O1"))
    assert escalated["decisionType"] == cards_types.REPLACEMENT_ESCALATED and "noStock" in escalated["reasonCodes"]
    assert world.outlet("O1").pending["CMP-1"].new_serial is None
    decisions = world.feed(batch("B-more", "O1", ["MORE-1", "MORE-2"]))
    [redrawn] = [d for d in decisions if d["decisionType"] == cards_types.REPLACEMENT_REDRAWN]
    assert redrawn["reasonCodes"] == ["stockArrived"] and redrawn["payload"]["previousCardSerial"] is None
    card, _ = world.feed(activated(redrawn["payload"]["newCardSerial"], "O1"))
    assert card["payload"]["balanceAfter"]["amountMinor"] == 5_000 and card["payload"]["replacesCardSerial"] == cards[0]


def test_C_STOCK_sales_and_write_offs_leave_the_outlet_stock():
    world, cards = stocked(4)
    sold(world, cards[0])
    world.feed(expired(cards[1], outlet="O1"))
    world.feed(blocked(cards[2]))  # outlet not named: it still counts the card
    assert set(world.outlet("O1").serials()) == {cards[2], cards[3]}


# --- C.DISPOSAL ----------------------------------------------------------------------------

def test_C_DISPOSAL_the_replacement_lists_the_voided_card_at_the_replacing_outlet():
    world, cards = stocked(3)
    sold(world, cards[0])
    [replaced, _] = world.feed(complaint(cards[0], "O1", complaint_id="CMP-1"))
    assert "C.DISPOSAL" in replaced["ruleIds"]
    assert replaced["payload"]["disposal"] == {"outletId": "O1", "cardSerial": cards[0], "batchId": "B-O1"}


def test_decisions_name_the_policy_version_and_their_input():
    world, cards = stocked(2)
    sold(world, cards[0])
    e = complaint(cards[0], "O1")
    for d in world.feed(e):
        assert d["policyVersion"].startswith("cards-2026.11-1@") and d["causedBy"] == [e.event_id]
        assert d["businessTime"] == e.event_time.isoformat()


def test_expiry_of_a_stock_card_at_its_outlet_writes_it_off():
    world, cards = stocked(2, expires=EXPIRES)
    decisions = world.feed(expired(cards[0], outlet="O1"))
    assert types(decisions) == [cards_types.CARD_EXPIRED, cards_types.STOCK_WRITTEN_OFF]


def test_the_contract_examples_decide_what_the_example_decision_shows():
    """schemas/examples: batch issued, card sold, 320 fen used, complaint showing 320 wrongly
    consumed -> cards.CardReplaced as in cards.decisions.v1/card-replaced.json; the later
    top-up of the voided card is refused with a fraud alert."""
    import json
    from pathlib import Path

    from schemas.validation import decode_event

    examples = Path(__file__).resolve().parents[2] / "schemas/examples"

    def example(name: str):
        topic = name.split("/")[0]
        return decode_event(topic, (examples / name).read_bytes())

    expected = json.loads((examples / "cards.decisions.v1/card-replaced.json").read_text())
    world = World()
    world.feed(example("cards.inventory.v1/batch-issued.json"), example("cards.inventory.v1/activated.json"),
               example("cards.inventory.v1/used.json"))
    replaced, _ = world.feed(example("cards.complaint.v1/charge-deducted-without-service.json"))
    assert replaced["decisionType"] == expected["decisionType"] and replaced["outcome"] == expected["outcome"]
    assert set(expected["ruleIds"]) <= set(replaced["ruleIds"])
    assert replaced["causedBy"] == expected["causedBy"]
    assert {k: replaced["payload"][k] for k in expected["payload"]} == expected["payload"]
    [fraud] = world.feed(example("cards.inventory.v1/topped-up.json"))
    assert fraud["decisionType"] == cards_types.VOID_CARD_USE_REFUSED


def test_C_STOCK_large_stock_stays_exact_across_compactions():
    world, cards = stocked(400)
    for card in cards[:300]:  # more sales than the overlay holds: the stock dict is rebuilt
        sold(world, card)
    world.feed(batch("B-more", "O1", ["MORE-1"]))
    outlet = world.outlet("O1")
    assert outlet.on_hand() == 101 and set(outlet.serials()) == set(cards[300:]) | {"MORE-1"}
    assert world.feed(complaint(cards[0], "O1"))[0]["payload"]["newCardSerial"] == "MORE-1"
    assert world.replayed() == {sid: world.states[sid] for sid in world.streams}
