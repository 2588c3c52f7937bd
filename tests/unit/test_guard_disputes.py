"""Disputes D.*, itemized bill D.ITEMIZED (pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.billing_guard.domain.disputes import held_amount
from services.billing_guard.domain.itemized_bill import itemized_bill

from harness.guard import T0, Guard, bill, cdr, dispute, fen, of_type, standard_rates, tariff, work

DAY = T0 + timedelta(days=5)


@pytest.fixture
def g():
    guard = Guard()
    guard.feed(tariff(1, T0 - timedelta(days=30), rates=standard_rates(per_min=10)))
    guard.feed(bill("A1", "B-02", T0.replace(month=2), 5000))  # February closed; March open
    return guard


def open_(g, items, amount, ticket="K1", when=DAY, actor="agent-1"):
    return g.feed(dispute("A1", ticket, "open", when, actor=actor, billId="B-03", disputedItems=items,
                          disputedAmount=fen(amount)))


def test_D_OPEN_first_receiver_owns_it_and_D_HOLD_puts_the_amount_on_hold(g):
    charge = g.feed(cdr(start=T0 + timedelta(days=1), seconds=120))[0]["payload"]
    out = open_(g, [charge["usageId"]], 20)
    opened = out[0]
    assert opened["decisionType"] == "guard.DisputeOpened" and len(out) == 1
    assert opened["payload"]["ownerId"] == "agent-1"
    assert opened["payload"]["hold"] == {"billId": "B-03", "amountMinor": 20, "billState": "onHold"}
    assert held_amount(g.states["guard-account-A1"], "B-03") == 20


def test_D_OPEN_transfer_needs_the_receivers_acceptance(g):
    open_(g, ["X"], 100)
    assert g.feed(dispute("A1", "K1", "transfer", DAY, actor="someone-else", toOwnerId="agent-2"))[0]["reasonCodes"] == ["ONLY_OWNER_MAY_TRANSFER"]
    g.feed(dispute("A1", "K1", "transfer", DAY, actor="agent-1", toOwnerId="agent-2"))
    assert g.states["guard-account-A1"].disputes["K1"].owner == "agent-1"
    assert g.feed(dispute("A1", "K1", "acceptTransfer", DAY, actor="agent-3"))[0]["outcome"] == "rejected"
    out = g.feed(dispute("A1", "K1", "acceptTransfer", DAY, actor="agent-2"))
    assert out[0]["decisionType"] == "guard.DisputeTransferAccepted"
    assert g.states["guard-account-A1"].disputes["K1"].owner == "agent-2"


def test_D_REPLY_15D_unanswered_at_15_days_is_overdue(g):
    open_(g, ["X"], 100)
    assert g.fire_due_timers(DAY + timedelta(days=14)) == []
    overdue = g.fire_due_timers(DAY + timedelta(days=15))
    assert [d["decisionType"] for d in overdue] == ["guard.DisputeReplyOverdue"]
    assert overdue[0]["businessTime"] == (DAY + timedelta(days=15)).isoformat()


def test_D_REPLY_15D_a_reply_in_time_cancels_the_overdue_alert(g):
    open_(g, ["X"], 100)
    g.feed(dispute("A1", "K1", "reply", DAY + timedelta(days=3), replyText="we are checking"))
    assert g.fire_due_timers(DAY + timedelta(days=20)) == []


def test_D_EVIDENCE_pack_lists_cdrs_tariff_versions_and_checkpoint_decisions(g):
    first = cdr(start=T0 + timedelta(days=1), origin="O-9", switch="SW1")
    g.feed(first)
    g.feed(cdr(start=T0 + timedelta(days=1), origin="O-9", switch="SW1", seq=first.payload["sequenceNumber"]))
    evidence = open_(g, [first.payload["usageId"]], 10)[0]["payload"]["evidence"]
    assert evidence["cycle"] == "2026-03"
    assert [i["usageId"] for i in evidence["items"]] == [first.payload["usageId"]]
    assert evidence["items"][0]["callingNumber"] == "138****5678"
    assert evidence["tariffVersions"][0]["tariffId"] == "T-STD" and evidence["tariffVersions"][0]["version"] == 1
    assert "guard.DuplicateCdrSuppressed" in {d["decisionType"] for d in evidence["checkpointDecisions"]}


def test_D_AUTO_CREDIT_charged_duplicate_is_credited_automatically(g):
    first = cdr(start=T0 + timedelta(days=1), origin="O-7", seconds=120)
    g.feed(first)
    copy = cdr(start=T0 + timedelta(days=1), origin="O-7", seconds=120, seq=first.payload["sequenceNumber"])
    g.feed(copy)
    out = open_(g, [copy.payload["usageId"]], 20)
    assert [d["decisionType"] for d in out] == ["guard.DisputeOpened", "guard.DisputeAutoCredited", "guard.CreditNoteIssued"]
    assert out[1]["outcome"] == "upheld" and out[1]["reasonCodes"] == ["CHARGED_DUPLICATE"]
    assert out[2]["payload"]["amountMinor"] == 20
    assert g.fire_due_timers(DAY + timedelta(days=20)) == []  # answered by the credit
    assert held_amount(g.states["guard-account-A1"]) == 0


def test_D_AUTO_CREDIT_charge_inside_a_cutover_window(g):
    start = T0 + timedelta(days=2)
    g.feed(work("W1", T0 - timedelta(days=3), start, hours=4, approvals=("provincial",), notices=(T0 - timedelta(days=4),)))
    charge = g.feed(cdr(start=start + timedelta(hours=1), seconds=60))[0]
    assert charge["outcome"] == "flaggedForVerification" and charge["payload"]["workIds"] == ["W1"]
    out = open_(g, [charge["payload"]["usageId"]], 50)
    assert out[1]["outcome"] == "partiallyUpheld" and out[1]["payload"]["creditMinor"] == 10
    assert out[1]["reasonCodes"] == ["CHARGED_IN_CUTOVER_WINDOW"]


def test_D_AUTO_CREDIT_charge_at_a_tariff_not_in_force(g):
    # The CDR was rated before the v2 event reached the guard (another partition): v1 charged.
    start = T0 + timedelta(days=10)
    charge = g.feed(cdr(start=start, seconds=120, received=start + timedelta(minutes=1)))[0]["payload"]
    assert charge["tariffVersion"] == 1
    g.feed(tariff(2, start - timedelta(hours=1), rates=standard_rates(per_min=5), at=start - timedelta(days=1)))
    out = open_(g, [charge["usageId"]], 20, when=start + timedelta(days=1))
    auto = of_type(out, "guard.DisputeAutoCredited")[0]
    assert auto["payload"]["faults"][0]["fault"] == "TARIFF_NOT_IN_FORCE"
    assert auto["payload"]["creditMinor"] == 10 and auto["outcome"] == "partiallyUpheld"


def test_D_RESOLVE_rejected_then_closed_no_credit(g):
    charge = g.feed(cdr(start=T0 + timedelta(days=1)))[0]["payload"]
    assert len(open_(g, [charge["usageId"]], 10)) == 1  # a correct charge is not auto-credited
    assert g.feed(dispute("A1", "K1", "close", DAY))[0]["reasonCodes"] == ["NOT_RESOLVED"]
    out = g.feed(dispute("A1", "K1", "resolve", DAY + timedelta(days=2), resolution="rejected"))
    assert [d["decisionType"] for d in out] == ["guard.DisputeResolved"] and out[0]["outcome"] == "rejected"
    assert g.feed(dispute("A1", "K1", "close", DAY + timedelta(days=3)))[0]["decisionType"] == "guard.DisputeClosed"


@pytest.mark.parametrize("resolution,credit,expected", [("upheld", None, 300), ("partiallyUpheld", 120, 120)])
def test_D_RESOLVE_upheld_and_partial_issue_credit_notes(g, resolution, credit, expected):
    open_(g, ["LINE-1"], 300)
    extra = {"creditAmount": fen(credit)} if credit else {}
    out = g.feed(dispute("A1", "K1", "resolve", DAY + timedelta(days=1), resolution=resolution, **extra))
    note = of_type(out, "guard.CreditNoteIssued")[0]
    assert note["payload"]["amountMinor"] == expected and note["payload"]["billId"] == "B-03"


def test_D_RESOLVE_partial_credit_above_the_disputed_amount_is_refused(g):
    open_(g, ["LINE-1"], 300)
    out = g.feed(dispute("A1", "K1", "resolve", DAY, resolution="partiallyUpheld", creditAmount=fen(300)))
    assert out[0]["reasonCodes"] == ["PARTIAL_CREDIT_OUT_OF_RANGE"]


def test_D_ITEMIZED_lists_every_charge_with_version_masked_unless_owner(g):
    g.feed(cdr(account="A2", start=T0 + timedelta(days=1)))
    a = g.feed(cdr(start=T0 + timedelta(days=1), seconds=61))[0]
    b = g.feed(cdr(start=T0 + timedelta(days=2), seconds=30))[0]
    g.feed(cdr(start=T0 + timedelta(days=40)))
    bill_ = itemized_bill(g.account_log("A1"), "A1", "2026-03")
    assert [line["usageId"] for line in bill_["lines"]] == [a["payload"]["usageId"], b["payload"]["usageId"]]
    assert bill_["chargesMinor"] == a["payload"]["amountMinor"] + b["payload"]["amountMinor"] == 30
    assert bill_["lines"][0]["calledNumber"] == "139****4321" and bill_["lines"][0]["tariffVersion"] == 1
    owner = itemized_bill(g.account_log("A1"), "A1", "2026-03", owner_view=True)
    assert owner["lines"][0]["calledNumber"] == "13987654321"
