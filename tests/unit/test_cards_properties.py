"""Property tests over random interleavings of sales, usage, top-ups, complaints (repeated),
counter activations of replacements, blocks and attempted reuse of voided cards.

Whatever the order: value is conserved (nothing created, nothing lost), a card is replaced at
most once and a complaint yields at most one card (C.ONCE), a voided card never moves value
again (C.VOID_IS_FINAL), a sold card is never drawn as a replacement (C.STOCK), and the stored
decisions rebuild the same states (A.REPLAY)."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.decision_types import cards as cards_types
from services.cards.domain import state as s
from services.cards.domain.projections import card_balances, value_ledger

from harness.cards import T0, World, activated, batch, blocked, complaint, topped_up, used

OUTLETS = ("O1", "O2")
HOME = {f"{o}-{i}": o for o in OUTLETS for i in range(5)}  # small stock: shortages happen
SERIALS = sorted(HOME)
PRESOLD = [f"{o}-{i}" for o in OUTLETS for i in range(2)]

card = st.sampled_from(SERIALS)
fen = st.integers(min_value=0, max_value=6_000)
step = st.one_of(
    st.tuples(st.just("sell"), card),
    st.tuples(st.just("use"), card, fen),
    st.tuples(st.just("topUp"), card, fen),
    st.tuples(st.just("complain"), card, st.sampled_from(OUTLETS), st.none() | fen, st.booleans()),
    st.tuples(st.just("handOver"), st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("block"), card, st.booleans()),
    st.tuples(st.just("reuseVoid"), st.integers(min_value=0, max_value=20), fen, st.booleans()),
)


def run(steps) -> World:
    world = World()
    world.feed(batch("B-O1", "O1", [x for x in SERIALS if HOME[x] == "O1"], face=5_000))
    world.feed(batch("B-O2", "O2", [x for x in SERIALS if HOME[x] == "O2"], face=3_000))
    for serial in PRESOLD:
        world.feed(activated(serial, HOME[serial]))
    for minute, (kind, *args) in enumerate(steps, start=1):
        at = T0 + timedelta(minutes=minute)
        if kind == "sell":
            world.feed(activated(args[0], HOME[args[0]], at))
        elif kind == "use":
            world.feed(used(args[0], args[1], at))
        elif kind == "topUp":
            world.feed(topped_up(args[0], args[1], at))
        elif kind == "complain":
            serial, outlet, wrongly, charge_related = args
            world.feed(complaint(serial, outlet, at, wrongly=wrongly, charge_related=charge_related))
        elif kind == "handOver":
            pending = [(o, p.new_serial) for o in OUTLETS for p in world.outlet(o).pending.values() if p.new_serial]
            if pending:
                outlet, serial = pending[args[0] % len(pending)]
                world.feed(activated(serial, outlet, at))
        elif kind == "block":
            serial, at_outlet = args
            world.feed(blocked(serial, at, outlet=HOME[serial] if at_outlet else None))
        elif kind == "reuseVoid":
            voided = sorted(x for x in SERIALS if world.card(x).status == s.VOID)
            if voided:
                serial = voided[args[0] % len(voided)]
                world.feed(used(serial, args[1], at) if args[2] else topped_up(serial, args[1], at))
    return world


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
def test_value_is_conserved_and_each_card_is_replaced_at_most_once(steps):
    world = run(steps)
    log = world.log

    # nothing created, nothing lost
    ledger = value_ledger(log)
    assert ledger.balanced, ledger
    assert all(v >= 0 for v in card_balances(log).values())
    for serial in SERIALS:
        assert world.card(serial).balance >= 0

    # C.ONCE: one replacement per card, one card per complaint, no stock card drawn twice
    replaced = Counter(d["payload"]["oldCardSerial"] for d in world.of_type(cards_types.CARD_REPLACED))
    assert all(n == 1 for n in replaced.values())
    draws = [d["payload"]["newCardSerial"] for d in log
             if d["decisionType"] in (cards_types.REPLACEMENT_DRAWN, cards_types.REPLACEMENT_REDRAWN)]
    assert len(draws) == len(set(draws))
    handed = Counter(d["payload"]["complaintId"] for d in world.of_type(cards_types.REPLACEMENT_CARD_ACTIVATED))
    assert all(n == 1 for n in handed.values())

    # the carried value lands exactly once, on the card finally handed out
    carried = {d["payload"]["complaintId"]: d["payload"]["transferredValue"] for d in world.of_type(cards_types.CARD_REPLACED)}
    for d in world.of_type(cards_types.REPLACEMENT_CARD_ACTIVATED):
        assert d["payload"]["balanceAfter"] == carried[d["payload"]["complaintId"]]

    # C.STOCK: a card sold is never drawn afterwards; a card drawn is never sold
    sold_at = {d["payload"]["cardSerial"]: i for i, d in enumerate(log) if d["decisionType"] == cards_types.CARD_ACTIVATED}
    for i, d in enumerate(log):
        if d["decisionType"] in (cards_types.REPLACEMENT_DRAWN, cards_types.REPLACEMENT_REDRAWN) and d["payload"]["newCardSerial"]:
            assert sold_at.get(d["payload"]["newCardSerial"], len(log)) > i
            assert d["payload"]["newCardSerial"] not in sold_at

    # C.VOID_IS_FINAL: after its replacement a card never moves value again
    voided_at = {d["payload"]["oldCardSerial"]: i for i, d in enumerate(log) if d["decisionType"] == cards_types.CARD_REPLACED}
    for i, d in enumerate(log):
        serial = d["payload"].get("cardSerial")
        if serial in voided_at and i > voided_at[serial]:
            assert d["decisionType"] not in (cards_types.USAGE_RECORDED, cards_types.TOP_UP_RECORDED, cards_types.CARD_ACTIVATED)

    # A.REPLAY: the stored decisions alone rebuild every state
    assert world.replayed() == {sid: world.states[sid] for sid in world.streams}


@settings(max_examples=100, deadline=None)
@given(st.permutations(["use", "complaint", "use2"]), st.integers(min_value=1, max_value=5_000))
def test_usage_and_complaint_for_one_card_in_any_order_never_spend_the_carried_value(order, amount):
    """The race of the issue, in the domain: whatever order the usage and the complaint for one
    card are decided in, the value consumed plus the value carried equals what the card held."""
    world = World()
    world.feed(batch("B", "O1", ["X", "S1", "S2"], face=5_000))
    world.feed(activated("X", "O1"))
    events = {"use": used("X", amount), "use2": used("X", amount), "complaint": complaint("X", "O1", wrongly=None)}
    for name in order:
        world.feed(events[name])
    consumed = sum(d["payload"]["amount"]["amountMinor"] for d in world.of_type(cards_types.USAGE_RECORDED))
    replaced = world.of_type(cards_types.CARD_REPLACED)
    carried = sum(d["payload"]["transferredValue"]["amountMinor"] for d in replaced)
    assert consumed + carried + world.card("X").balance == 5_000
    assert len(replaced) <= 1
    if replaced:  # every use decided after the complaint met a void card
        after = order[order.index("complaint") + 1:]
        assert len(world.of_type(cards_types.VOID_CARD_USE_REFUSED)) == len(after)
        assert world.card("X").balance == 0
    else:  # only an exhausted card is not replaced here
        assert world.card("X").status == s.EXHAUSTED
