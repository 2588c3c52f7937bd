"""explain_charge: the story of one charge from the guard's decisions alone (CP2.TRACEABLE,
D.EVIDENCE, D.RESOLVE, A.PRIVACY), pure."""
from __future__ import annotations

from datetime import timedelta

from services.billing_guard.domain.charge_story import explain_charge, render

from harness.guard import T0, Guard, bill, cdr, customer_change, dispute, fen, of_type, standard_rates, tariff, work


def scenario():
    g = Guard()
    g.feed(tariff(1, T0 - timedelta(days=60), tariff_id="T-GOLD", at=T0 - timedelta(days=61)))
    g.feed(tariff(2, T0, rates=standard_rates(per_min=12), tariff_id="T-GOLD", at=T0 - timedelta(days=10),
                  replaces=1, approval="APP-1", filing="BA-1"))
    g.feed(customer_change("A1", "tariffPlan", "T-STD", "T-GOLD", T0 - timedelta(days=40), role="counterClerk"))
    start = T0 + timedelta(days=3, hours=2)
    g.feed(work("W1", T0 - timedelta(days=5), start, approvals=("provincial",), notices=(T0 - timedelta(days=6),),
                switches=("SW9",)))
    g.feed(cdr("A1", T0 + timedelta(days=1), seconds=120, switch="SW1", origin="O1", seq=1, usage_id="U-OK"))
    g.feed(cdr("A1", T0 + timedelta(days=1), seconds=120, switch="SW1", origin="O1", seq=1, usage_id="U-COPY"))
    g.feed(cdr("A1", start + timedelta(hours=1), seconds=60, switch="SW9", seq=1, usage_id="U-WIN"))
    g.feed(bill("A1", "B3", T0, 36))
    opened = T0 + timedelta(days=33)
    g.feed(dispute("A1", "K-DUP", "open", opened, billId="B3", disputedItems=["U-COPY"], disputedAmount=fen(24)))
    g.feed(dispute("A1", "K-REJ", "open", opened, billId="B3", disputedItems=["U-OK"], disputedAmount=fen(24)))
    g.feed(dispute("A1", "K-REJ", "resolve", opened + timedelta(days=4), resolution="rejected", reason="verified"))
    g.feed(dispute("A1", "K-REJ", "close", opened + timedelta(days=5)))
    return g


def test_CP2_TRACEABLE_story_names_the_tariff_version_its_acceptance_and_the_plan_change():
    g = scenario()
    story = explain_charge(g.log, "U-OK")
    assert story["found"] and story["accountId"] == "A1"
    assert (story["tariff"]["tariffId"], story["tariff"]["version"]) == ("T-GOLD", 2)
    acceptance = story["tariff"]["acceptance"]
    accepted = [d for d in of_type(g.log, "guard.TariffVersionAccepted") if d["payload"]["version"] == 2][0]
    assert acceptance["decisionId"] == accepted["decisionId"]
    assert (acceptance["approvalRef"], acceptance["filingRef"], acceptance["increase"]) == ("APP-1", "BA-1", True)
    plan = of_type(g.log, "guard.CustomerDataChanged")[0]
    assert story["tariff"]["planChange"]["decisionId"] == plan["decisionId"]
    assert story["charge"]["amountMinor"] == 24 and story["charge"]["callingNumber"] == "138****5678"
    assert story["billCycle"] == {"cycle": "2026-03", "closed": True, "billId": "B3", "billAmountMinor": 36,
                                  "closedAt": of_type(g.log, "guard.BillCycleClosed")[0]["businessTime"]}


def test_CP3_CP5_story_lists_the_checkpoints_the_cdr_passed():
    g = scenario()
    ok = explain_charge(g.log, "U-OK")["checkpoints"]
    assert ok["sanity"]["result"] == "passed" and ok["dedup"]["result"] == "firstCopy"
    assert [c["usageId"] for c in ok["dedup"]["suppressedCopies"]] == ["U-COPY"]
    assert ok["sequence"]["sequenceNumber"] == 1 and ok["late"]["result"] == "inCycle"
    assert ok["cutoverWindow"]["result"] == "outsideWindows" and ok["hugeFee"]["alerts"] == []
    win = explain_charge(g.log, "U-WIN")["checkpoints"]["cutoverWindow"]
    assert win["result"] == "flaggedForVerification" and [w["workId"] for w in win["works"]] == ["W1"]
    copy = explain_charge(g.log, "U-COPY")
    assert copy["duplicateOf"] == "U-OK" and copy["checkpoints"]["dedup"]["result"] == "suppressedDuplicate"
    assert explain_charge(g.log, "U-NONE") == {"usageId": "U-NONE", "found": False}


def test_D_RESOLVE_story_tells_how_and_when_each_dispute_was_answered():
    g = scenario()
    copy_tickets = {d["ticketId"]: d for d in explain_charge(g.log, "U-COPY")["disputes"]}
    assert sorted(copy_tickets) == ["K-DUP", "K-REJ"]  # the copy's own and its original's
    auto = copy_tickets["K-DUP"]
    note = of_type(g.log, "guard.CreditNoteIssued")[0]
    assert (auto["ticketId"], auto["resolution"], auto["automatic"], auto["status"]) == ("K-DUP", "upheld", True, "resolved")
    assert auto["creditNotes"] == [{"creditNoteId": note["payload"]["creditNoteId"], "amountMinor": 24,
                                    "issuedAt": note["businessTime"], "how": "automatic", "decisionId": note["decisionId"]}]
    assert auto["answeredAt"] == auto["resolvedAt"] == auto["openedAt"]
    # The original charge's story shows both tickets touching it (the copy's and its own).
    stories = {d["ticketId"]: d for d in explain_charge(g.log, "U-OK")["disputes"]}
    rejected = stories["K-REJ"]
    assert (rejected["resolution"], rejected["creditNotes"], rejected["status"]) == ("rejected", [], "closed")
    assert rejected["resolvedAt"] == (T0 + timedelta(days=37)).isoformat()
    assert [s["decisionType"] for s in rejected["trail"]] == ["guard.DisputeOpened", "guard.DisputeResolved",
                                                             "guard.DisputeClosed"]


def test_A_PRIVACY_rendered_story_masks_phone_numbers():
    g = scenario()
    text = render(explain_charge(g.log, "U-OK"))
    assert "13812345678" not in text and "13987654321" not in text and "138****5678" in text
    assert "T-GOLD v2" in text and "approval APP-1" in text and "dispute K-REJ" in text


def test_CP3_LATE_story_of_a_late_adjustment_names_the_decision_that_closed_its_cycle():
    g = scenario()
    g.feed(cdr("A1", T0 + timedelta(days=31, hours=3), seconds=60, switch="SW1", seq=2, usage_id="U-APRIL"))
    g.feed(cdr("A1", T0 + timedelta(days=20), seconds=60, switch="SW1", seq=3, usage_id="U-LATE",
               received=T0 + timedelta(days=32)))
    story = explain_charge(g.log, "U-LATE")
    (closed,) = of_type(g.log, "guard.UsageCycleClosed")
    assert story["checkpoints"]["late"] == {"ruleId": "CP3.LATE", "result": "lateAdjustment",
                                            "naturalCycle": "2026-03", "billedCycle": "2026-03"}
    assert story["usageCycle"]["decisionId"] == closed["decisionId"] and story["usageCycle"]["closed"]
    assert "closed by the CDR watermark" in render(story) and "CP3.LATE lateAdjustment" in render(story)
    assert explain_charge(g.log, "U-APRIL")["usageCycle"] == {"cycle": "2026-04", "closed": False, "closesAt": None}


def test_the_outcome_comes_first_also_for_a_call_held_for_review():
    """Issue 16: explain-charge hid the outcome (mid-line for a charge, nowhere for a call held
    for review); the second line of the story now says it, with the rule that decided."""
    g = scenario()
    g.feed(cdr("A2", T0 + timedelta(days=1), seconds=60, switch="SW2", seq=1, usage_id="U-NOTARIFF"))
    held = render(explain_charge(g.log, "U-NOTARIFF")).splitlines()[1]
    assert held == "  OUTCOME: heldForReview, not charged (CP2.EFFECTIVE_DATING: NO_TARIFF_VERSION_IN_FORCE)"
    # the copy of U-OK was disputed and credited automatically (D.AUTO_CREDIT): the charge was given back
    assert render(explain_charge(g.log, "U-OK")).splitlines()[1] == "  OUTCOME: charged 24 fen; 24 fen credited back (credit notes)"
    assert render(explain_charge(g.log, "U-WIN")).splitlines()[1].startswith(
        "  OUTCOME: charged, flagged for verification: in a cutover window (CP5.WINDOW_CDRS)")
    assert explain_charge(g.log, "U-COPY")["outcome"].startswith("suppressed as a duplicate of U-OK")


def test_CP3_LATE_a_late_adjustment_in_a_cutover_window_says_lateAdjustment_and_the_story_words_it():
    """L3/L4: the window flag stays, but the outcome is the late adjustment (CP3.LATE)."""
    from services.billing_guard.domain.charge_story import outcome
    g = scenario()
    g.feed(cdr("A1", T0 + timedelta(days=35), seconds=60, switch="SW1", usage_id="U-APRIL"))  # closes March
    window_start = T0 + timedelta(days=3, hours=2)
    late = g.feed(cdr("A1", window_start + timedelta(minutes=30), seconds=60, switch="SW9", seq=2,
                      usage_id="U-LATE-WIN", received=T0 + timedelta(days=36)))
    [rated] = of_type(late, "guard.CdrRated")
    assert rated["outcome"] == "lateAdjustment"
    assert rated["payload"]["flags"] == ["LATE_ADJUSTMENT", "IN_CUTOVER_WINDOW"]
    assert rated["payload"]["cycle"] == "2026-03"
    story = explain_charge(g.log, "U-LATE-WIN")
    assert outcome(story).startswith("charged as a late adjustment to its own closed cycle 2026-03 (CP3.LATE)")
    assert "in a cutover window (CP5.WINDOW_CDRS)" in outcome(story)
    text = render(story)
    assert "bill for cycle 2026-03: B3 (36 fen) recorded at" in text and "closed by bill" not in text


def test_CP3_SEQUENCE_GAP_story_takes_the_number_from_the_charge_and_the_switch_record_when_stored():
    g = scenario()
    ok = explain_charge(g.log, "U-OK")["checkpoints"]["sequence"]
    assert ok == {"ruleId": "CP3.SEQUENCE_GAP", "sequenceNumber": 1, "outcome": "noGapOpenedOrClosed"}
    assert "sequence" not in explain_charge(g.log, "U-COPY")["checkpoints"]  # a copy is never routed
    g.feed(cdr("A1", T0 + timedelta(days=2), switch="SW1", seq=5, usage_id="U-JUMP"))
    jump = explain_charge(g.log, "U-JUMP")["checkpoints"]["sequence"]
    [opened] = of_type(g.log, "guard.SwitchSequenceRecorded")
    assert (jump["sequenceNumber"], jump["outcome"], jump["decisionId"]) == (5, "gapOpened", opened["decisionId"])
    assert "CP3.SEQUENCE_GAP seq 5 gapOpened" in render(explain_charge(g.log, "U-JUMP"))


def test_CP3_SEQUENCE_GAP_story_of_a_store_from_before_the_charge_carried_its_number():
    g = scenario()
    old = [{**d, "payload": {k: v for k, v in d["payload"].items() if k != "sequenceNumber"}} for d in g.log]
    assert "sequence" not in explain_charge(old, "U-OK")["checkpoints"]
    charge = next(d for d in old if d["decisionType"] == "guard.CdrRated" and d["payload"]["usageId"] == "U-OK")
    record = {**charge, "decisionId": "d-seq", "decisionType": "guard.SwitchSequenceRecorded", "outcome": "inSequence",
              "ruleIds": ["CP3.SEQUENCE_GAP"], "reasonCodes": [], "streamId": "guard-switch-SW1",
              "payload": {"switchId": "SW1", "sequenceNumber": 1, "usageId": "U-OK"}}
    sequence = explain_charge(old + [record], "U-OK")["checkpoints"]["sequence"]
    assert (sequence["sequenceNumber"], sequence["outcome"], sequence["decisionId"]) == (1, "inSequence", "d-seq")
