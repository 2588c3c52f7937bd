"""Reminder delivery, cadence, late fees, holds and escalation (SPEC.md section 3), pure."""
from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.dunning.domain.account import Bill
from services.dunning.domain.late_fees import late_fee

from harness.dunning import SHANGHAI, Account, bill, delivery, guard_decision, of_type, payment

DUE = datetime(2026, 10, 15, 23, 59, tzinfo=SHANGHAI)


def repeat_offender() -> Account:
    """An account whose first arrears is behind it: its next one is a repeat offence."""
    acc = Account()
    acc.feed(bill("A1", "B0", DUE - timedelta(days=60), 1_000))
    acc.feed(payment("A1", "P0", DUE - timedelta(days=55), 1_000, "B0"))  # late by 5 days
    return acc


def test_DN_FIRST_LETTER_reminder_is_delivered_once_by_letter():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    fired = acc.fire_due_timers(DUE + timedelta(days=29))
    due = of_type(fired, "dunning.ReminderDue")
    assert len(due) == 1
    assert due[0]["payload"]["channel"] == "letter" and due[0]["outcome"] == "deliver"
    assert "DN.FIRST_LETTER" in due[0]["ruleIds"]


def test_DN_REPEAT_VOICE_voice_reminders_repeat_on_the_cadence_until_paid():
    acc = repeat_offender()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    fired = acc.fire_due_timers(DUE + timedelta(days=13))
    due = of_type(fired, "dunning.ReminderDue")
    # due 23:59 + 3 grace days falls at night -> 08:00 the next morning, then every 3 days
    assert [d["payload"]["sequence"] for d in due] == [1, 2, 3, 4]
    assert [datetime.fromisoformat(d["businessTime"]).astimezone(SHANGHAI).strftime("%m-%d %H:%M") for d in due] == [
        "10-19 08:00", "10-22 08:00", "10-25 08:00", "10-28 08:00",
    ]
    assert {d["payload"]["channel"] for d in due} == {"voice", "letter"}
    assert due[0]["payload"]["channel"] == "voice"
    paid = acc.feed(payment("A1", "P1", DUE + timedelta(days=13, hours=12), 5_000))
    closed = of_type(paid, "dunning.OccurrenceClosed")[0]
    assert closed["payload"]["cancelsTimers"], "DN.PAYMENT_STOPS: pending reminders are cancelled"
    assert of_type(acc.fire_due_timers(DUE + timedelta(days=60)), "dunning.ReminderDue") == []


def test_DN_QUIET_HOURS_no_reminder_is_due_between_20_and_8():
    acc = repeat_offender()
    acc.feed(bill("A1", "B1", DUE, 5_000))  # due at 23:59: grace would land at night
    for d in of_type(acc.fire_due_timers(DUE + timedelta(days=29)), "dunning.ReminderDue"):
        local = datetime.fromisoformat(d["businessTime"]).astimezone(SHANGHAI)
        assert 8 <= local.hour < 20, local


def test_DN_CREDIT_LEVEL_manual_reminders_name_the_account_manager():
    acc = Account()
    event = bill("A1", "B1", DUE, 5_000, level="A", tier="gold")
    event.payload["customer"]["accountManagerId"] = "AM-007"
    acc.feed(event)
    due = of_type(acc.fire_due_timers(DUE + timedelta(days=10)), "dunning.ReminderDue")[0]
    assert due["payload"]["channel"] == "accountManager" and due["payload"]["accountManagerId"] == "AM-007"


def test_CP4_REMINDED_delivery_outcomes_are_recorded_and_counted():
    acc = repeat_offender()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    due = of_type(acc.fire_due_timers(DUE + timedelta(days=7)), "dunning.ReminderDue")
    answered = acc.feed(delivery("A1", due[0]["decisionId"], "answered", DUE + timedelta(days=3)))[0]
    missed = acc.feed(delivery("A1", due[1]["decisionId"], "noAnswer", DUE + timedelta(days=6)))[0]
    unknown = acc.feed(delivery("A1", "00000000-0000-4000-8000-000000000000", "answered", DUE))[0]
    assert (answered["outcome"], missed["outcome"]) == ("delivered", "notDelivered")
    assert unknown["reasonCodes"] == ["UNKNOWN_REMINDER"] and unknown["payload"]["delivered"] is False
    request = of_type(acc.fire_due_timers(DUE + timedelta(days=31)), "dunning.SuspensionRequested")[0]
    assert request["payload"]["remindersDelivered"] == 1


def test_DN_ESCALATE_more_than_30_days_overdue_asks_the_guard_to_suspend():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 10_000))
    assert of_type(acc.fire_due_timers(DUE + timedelta(days=30)), "dunning.SuspensionRequested") == []
    request = of_type(acc.fire_due_timers(DUE + timedelta(days=30, seconds=1)), "dunning.SuspensionRequested")
    assert len(request) == 1
    body = request[0]["payload"]
    assert body["overdueMinor"] == 10_000 and body["daysOverdue"] == 30
    assert body["lateFeeToDateMinor"] == 10_000 * 30 * 3 // 1000
    assert request[0]["ruleIds"] == ["DN.ESCALATE", "CP4.OVERDUE_30"]


def test_DN_ESCALATE_restoration_is_requested_when_a_suspended_account_pays():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 10_000))
    acc.fire_due_timers(DUE + timedelta(days=31))
    acc.feed(guard_decision("A1", "guard.SuspensionApproved", DUE + timedelta(days=31, hours=1), {}, "susp"))
    assert acc.state.suspension == "suspended"
    skipped = of_type(acc.fire_due_timers(DUE + timedelta(days=40)), "dunning.ReminderDue")
    assert skipped == []  # a suspended first offender gets no more reminders
    paid = acc.feed(payment("A1", "P1", DUE + timedelta(days=41), 10_000))
    restore = of_type(paid, "dunning.RestorationRequested")
    assert len(restore) == 1 and "CP4.RESTORE_48H" in restore[0]["ruleIds"]


def test_D_HOLD_a_bill_wholly_disputed_before_its_due_date_is_not_in_arrears():
    acc = repeat_offender()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.feed(guard_decision("A1", "guard.DisputeOpened", DUE - timedelta(days=1),
                            {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 5_000,
                             "hold": {"billId": "B1", "amountMinor": 5_000, "billState": "onHold"}}, "open"))
    fired = acc.fire_due_timers(DUE + timedelta(days=40))
    for kind in ("dunning.OccurrenceOpened", "dunning.ReminderDue", "dunning.SuspensionRequested"):
        assert of_type(fired, kind) == []


def test_D_HOLD_a_dispute_after_the_due_date_stops_reminders_and_escalation():
    acc = repeat_offender()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE + timedelta(days=1))
    acc.feed(guard_decision("A1", "guard.DisputeOpened", DUE + timedelta(days=1, hours=1),
                            {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 5_000}, "open"))
    fired = acc.fire_due_timers(DUE + timedelta(days=40))
    assert of_type(fired, "dunning.ReminderDue") == []
    assert {d["reasonCodes"][0] for d in of_type(fired, "dunning.ReminderSkipped")} == {"DISPUTED"}
    assert of_type(fired, "dunning.SuspensionRequested") == []
    assert of_type(fired, "dunning.EscalationSkipped")[0]["reasonCodes"] == ["ALL_DISPUTED"]


def test_D_HOLD_a_rejected_dispute_opens_the_arrears_from_the_original_due_date():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.feed(guard_decision("A1", "guard.DisputeOpened", DUE - timedelta(days=1),
                            {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 5_000}, "open"))
    assert of_type(acc.fire_due_timers(DUE + timedelta(days=5)), "dunning.OccurrenceOpened") == []
    released = acc.feed(guard_decision("A1", "guard.DisputeResolved", DUE + timedelta(days=6),
                                       {"billId": "B1", "ticketId": "T1"}, "rejected"))
    opened = of_type(released, "dunning.OccurrenceOpened")[0]
    assert opened["payload"]["anchorDate"] == DUE.isoformat() and opened["payload"]["overdueMinor"] == 5_000


def test_D_RESOLVE_credit_note_in_full_closes_the_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE + timedelta(days=2))
    credited = acc.feed(guard_decision("A1", "guard.CreditNoteIssued", DUE + timedelta(days=3),
                                       {"billId": "B1", "ticketId": "T1", "amountMinor": 5_000, "currency": "CNY"}, "credit"))
    assert [d["decisionType"] for d in credited][:2] == ["dunning.CreditApplied", "dunning.OccurrenceClosed"]


def test_guard_decisions_about_other_things_are_not_dunnings():
    acc = Account()
    event = guard_decision("A1", "guard.TariffAccepted", DUE, {}, "tariff")
    assert acc.decider.stream_id(event) is None


def test_DN_LATE_FEE_partial_payments_lower_the_basis_and_rounding_is_floor_once():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 10_001))
    acc.fire_due_timers(DUE + timedelta(days=1))
    acc.feed(payment("A1", "P1", DUE + timedelta(days=4, hours=1), 5_000))
    done = acc.feed(payment("A1", "P2", DUE + timedelta(days=10, hours=2), 5_001))
    fee = of_type(done, "dunning.LateFeeCharged")[0]["payload"]
    # days 1-5 start on 10,001 owed (the partial payment came an hour into day 5),
    # days 6-10 start on 5,001; the final payment two hours into day 11 adds no day
    basis = 5 * 10_001 + 5 * 5_001
    assert fee["basisMinorDays"] == basis and fee["daysOverdue"] == 10
    assert fee["feeMinor"] == basis * 3 // 1000 == 225


def test_DN_LATE_FEE_is_not_charged_twice_when_a_reversal_reopens():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 10_000))
    acc.fire_due_timers(DUE + timedelta(days=1))
    first = of_type(acc.feed(payment("A1", "P1", DUE + timedelta(days=5), 10_000)), "dunning.LateFeeCharged")[0]
    acc.feed(payment("A1", "P1R", DUE + timedelta(days=6), 10_000, status="reversed", reverses="P1"))
    again = of_type(acc.feed(payment("A1", "P2", DUE + timedelta(days=8), 10_000)), "dunning.LateFeeCharged")[0]
    assert first["payload"]["feeMinor"] == 150
    assert again["payload"]["totalFeeMinor"] == 10_000 * 8 * 3 // 1000 - 10_000 * 1 * 3 // 1000  # no fee-day 6 while paid
    assert first["payload"]["feeMinor"] + again["payload"]["feeMinor"] == again["payload"]["totalFeeMinor"]


@given(st.lists(st.tuples(st.integers(-5, 40), st.sampled_from(("paid", "held", "credited")), st.integers(-5_000, 20_000)),
                max_size=8), st.integers(0, 60), st.integers(1, 50_000))
def test_DN_LATE_FEE_matches_an_independent_day_by_day_calculation(changes, days, amount_due):
    moves = tuple((DUE + timedelta(days=d, hours=3), *(v if k == kind else 0 for k in ("paid", "credited", "held")))
                  for d, kind, v in changes)
    bill_state = Bill("B1", amount_due, 0, DUE, "B", "standard", changes=moves)
    fee, counted, _ = late_fee(DUE, bill_state, DUE + timedelta(days=days), 3)
    thousandths = 0
    for day in range(days):
        start = DUE + timedelta(days=day)
        paid = sum(v for at, v, _, _ in moves if at <= start)
        credited = sum(v for at, _, v, _ in moves if at <= start)
        held = sum(v for at, _, _, v in moves if at <= start)
        thousandths += max(0, max(0, amount_due - paid - credited) - held) * 3
    assert counted == days and fee == thousandths // 1000


def test_DN_LATE_FEE_does_not_depend_on_the_order_inputs_are_processed_in():
    def fee(order):
        acc = Account()
        acc.feed(bill("A1", "B1", DUE, 10_000))
        events = {
            "partial": payment("A1", "P1", DUE + timedelta(days=5), 5_000),
            "dispute": guard_decision("A1", "guard.DisputeOpened", DUE + timedelta(days=7),
                                      {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 3_000}, "open"),
        }
        acc.fire_due_timers(DUE + timedelta(days=1))
        for name in order:
            acc.feed(events[name])
        acc.feed(guard_decision("A1", "guard.DisputeCancelled", DUE + timedelta(days=9), {"billId": "B1", "ticketId": "T1"}, "x"))
        done = acc.feed(payment("A1", "P2", DUE + timedelta(days=12), 5_000))
        return of_type(done, "dunning.LateFeeCharged")[0]["payload"]["feeMinor"]

    # days 0-4 on 10,000; 5-6 on 5,000; 7-8 on 2,000 (3,000 held); 9-11 on 5,000
    expected = (5 * 10_000 + 2 * 5_000 + 2 * 2_000 + 3 * 5_000) * 3 // 1000
    assert fee(["partial", "dispute"]) == fee(["dispute", "partial"]) == expected


life = st.lists(
    st.tuples(st.sampled_from(("bill", "pay", "partial", "reverse", "dispute", "deliver", "wait")),
              st.integers(min_value=1, max_value=40), st.integers(min_value=100, max_value=50_000)),
    min_size=1, max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(life, st.sampled_from("ABCDE"), st.sampled_from(("diamond", "gold", "silver", "standard")))
def test_no_sequence_of_events_calls_a_first_offender_or_calls_at_night(steps, level, tier):
    acc = Account()
    now, bills, payments = DUE, 0, []
    for action, days, fen in steps:
        now += timedelta(days=days)
        if action == "bill":
            bills += 1
            acc.feed(bill("A1", f"B{bills}", now + timedelta(days=14), fen, level, tier))
        elif action in ("pay", "partial"):
            payments.append(f"P{len(payments) + 1}")
            acc.feed(payment("A1", payments[-1], now, fen if action == "pay" else fen // 3))
        elif action == "reverse" and payments:
            acc.feed(payment("A1", payments[-1] + "R", now, fen, status="reversed", reverses=payments[-1]))
        elif action == "dispute" and bills:
            acc.feed(guard_decision("A1", "guard.DisputeOpened", now,
                                    {"billId": f"B{bills}", "ticketId": f"T{now}", "disputedAmountMinor": fen}, f"d{now}"))
        elif action == "deliver":
            for due in of_type(acc.log, "dunning.ReminderDue")[-1:]:
                acc.feed(delivery("A1", due["decisionId"], "answered", now))
        acc.fire_due_timers(now)
    for due in of_type(acc.log, "dunning.ReminderDue"):
        local = datetime.fromisoformat(due["businessTime"]).astimezone(SHANGHAI)
        assert 8 <= local.hour < 20, "DN.QUIET_HOURS"
        if due["payload"]["offenceCount"] == 1:
            assert due["payload"]["channel"] in ("letter", "manual", "accountManager"), "DN.FIRST_LETTER"
    for scheduled in of_type(acc.log, "dunning.ReminderScheduled"):
        assert scheduled["payload"]["voiceAllowed"] == (scheduled["payload"]["offenceCount"] >= 2)


def test_D_HOLD_release_on_resolution_brings_the_amount_back_to_dunning():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.feed(guard_decision("A1", "guard.DisputeOpened", DUE - timedelta(days=2),
                            {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 2_000}, "open"))
    assert acc.state.bills["B1"].undisputed == 3_000
    released = acc.feed(guard_decision("A1", "guard.DisputeResolved", DUE - timedelta(days=1),
                                       {"billId": "B1", "ticketId": "T1"}, "resolved"))
    assert released[0]["decisionType"] == "dunning.HoldReleased" and released[0]["payload"]["releasedMinor"] == 2_000
    assert acc.state.bills["B1"].undisputed == 5_000
    opened = of_type(acc.fire_due_timers(DUE), "dunning.OccurrenceOpened")[0]
    assert opened["payload"]["overdueMinor"] == 5_000


def test_D_HOLD_a_dispute_dated_before_the_due_date_but_decided_after_withdraws_the_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE + timedelta(hours=1))  # the due check got there first
    late = acc.feed(guard_decision("A1", "guard.DisputeOpened", DUE - timedelta(days=2),
                                   {"billId": "B1", "ticketId": "T1", "disputedAmountMinor": 5_000}, "open"))
    assert [d["decisionType"] for d in late] == ["dunning.HoldApplied", "dunning.OccurrenceWithdrawn"]
    assert acc.state.occurrences == ()
    assert of_type(acc.fire_due_timers(DUE + timedelta(days=40)), "dunning.ReminderDue") == []


def test_work_queue_lists_todays_manual_reminders_by_account_manager():
    from services.dunning.domain.work_queue import work_queue

    acc = Account()
    gold = bill("A1", "B1", DUE, 5_000, level="A", tier="gold")
    gold.payload["customer"]["accountManagerId"] = "AM-1"
    acc.feed(gold)
    acc.feed(bill("A1", "B2", DUE, 7_000, level="D", tier="standard"))  # weaker credit: manual, at the counter
    acc.fire_due_timers(DUE + timedelta(days=10))
    reminders = of_type(acc.log, "dunning.ReminderDue")
    days = {datetime.fromisoformat(r["businessTime"]).astimezone(SHANGHAI).date() for r in reminders}
    queue = {}
    for day in days:
        for manager, items in work_queue(acc.log, day, SHANGHAI).items():
            queue.setdefault(manager, []).extend(items)
    assert sorted(queue) == ["AM-1", "counter-staff"]
    assert queue["AM-1"][0]["billId"] == "B1" and queue["counter-staff"][0]["billId"] == "B2"
    first = queue["AM-1"][0]
    acc.feed(delivery("A1", first["reminderId"], "answered", DUE + timedelta(days=6), "accountManager"))
    day = datetime.fromisoformat(first["dueAt"]).date()
    assert all(i["reminderId"] != first["reminderId"] for items in work_queue(acc.log, day, SHANGHAI).values() for i in items)


def test_work_queue_counts_reminders_scheduled_for_the_day_before_their_timer_fires():
    """Issue 16: `work-queue --day` showed 0 while reminders were scheduled that day; a person
    reminder is the day's work from the moment it is scheduled for the day, and leaves the queue
    once paid (its timer cancelled) or delivered."""
    from services.dunning.domain.work_queue import work_queue

    acc = Account()
    gold = bill("A1", "B1", DUE, 5_000, level="A", tier="gold")
    gold.payload["customer"]["accountManagerId"] = "AM-1"
    acc.feed(gold)
    acc.fire_due_timers(DUE + timedelta(minutes=1))  # the due-date check: arrears open, reminder scheduled
    scheduled = of_type(acc.log, "dunning.ReminderScheduled")
    assert scheduled and of_type(acc.log, "dunning.ReminderDue") == []
    day = datetime.fromisoformat(scheduled[0]["payload"]["scheduledFor"]).astimezone(SHANGHAI).date()
    queue = work_queue(acc.log, day, SHANGHAI)
    assert [(i["billId"], i["state"], i["overdueMinor"]) for i in queue["AM-1"]] == [("B1", "scheduled", 5_000)]
    assert work_queue(acc.log, day - timedelta(days=1), SHANGHAI) == {}
    acc.fire_due_timers(DUE + timedelta(days=10))  # now due: listed once, as due
    queue = work_queue(acc.log, day, SHANGHAI)
    assert [(i["billId"], i["state"]) for i in queue["AM-1"]] == [("B1", "due")]
