"""Unit tests of the dunning rules (SPEC.md section 3), pure: no broker, no database."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.ids import derived_id
from services.dunning.domain.occurrences import offence_count
from services.dunning.domain.reminders import outside_quiet_hours

from harness.dunning import SHANGHAI, Account, bill, of_type, payment, policy

DUE = datetime(2026, 10, 15, 23, 59, tzinfo=SHANGHAI)


def test_DN_OCCURRENCE_unpaid_after_due_date_opens_an_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    fired = acc.fire_due_timers(DUE)
    opened = of_type(fired, "dunning.OccurrenceOpened")
    assert len(opened) == 1
    assert opened[0]["ruleIds"] == ["DN.OCCURRENCE"]
    assert opened[0]["payload"]["overdueMinor"] == 5_000
    assert opened[0]["payload"]["offenceCount"] == 1
    assert opened[0]["businessTime"] == DUE.isoformat()


def test_DN_OCCURRENCE_paid_before_due_cancels_the_due_check():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    applied = acc.feed(payment("A1", "P1", DUE - timedelta(days=2), 5_000, "B1"))
    assert applied[0]["payload"]["cancelsTimers"]
    assert acc.fire_due_timers(DUE + timedelta(days=40)) == []


def test_DN_OCCURRENCE_partial_payment_keeps_the_anchor_and_lowers_the_amount():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.feed(payment("A1", "P1", DUE - timedelta(days=1), 2_000, "B1"))
    opened = of_type(acc.fire_due_timers(DUE), "dunning.OccurrenceOpened")[0]
    assert opened["payload"]["overdueMinor"] == 3_000
    assert opened["payload"]["anchorDate"] == DUE.isoformat()


def test_DN_FIRST_LETTER_first_offence_gets_a_letter_never_voice():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000, level="B", tier="standard"))
    reminder = of_type(acc.fire_due_timers(DUE), "dunning.ReminderScheduled")[0]
    assert "DN.FIRST_LETTER" in reminder["ruleIds"]
    assert reminder["payload"]["channel"] == "letter"
    assert reminder["payload"]["voiceAllowed"] is False


def test_DN_CREDIT_LEVEL_top_tier_first_offence_goes_to_the_account_manager():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000, level="A", tier="diamond"))
    reminder = of_type(acc.fire_due_timers(DUE), "dunning.ReminderScheduled")[0]
    assert reminder["payload"]["channel"] == "accountManager"
    assert "DN.CREDIT_LEVEL" in reminder["ruleIds"]


def test_DN_REPEAT_VOICE_second_occurrence_allows_voice():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE)
    acc.feed(payment("A1", "P1", DUE + timedelta(days=5), 5_000, "B1"))
    second_due = DUE + timedelta(days=30)
    acc.feed(bill("A1", "B2", second_due, 7_000))
    fired = acc.fire_due_timers(second_due)
    assert of_type(fired, "dunning.OccurrenceOpened")[0]["payload"]["offenceCount"] == 2
    reminder = of_type(fired, "dunning.ReminderScheduled")[0]
    assert "DN.REPEAT_VOICE" in reminder["ruleIds"]
    assert reminder["payload"]["voiceAllowed"] is True
    assert reminder["payload"]["channel"] == "voice"


def test_DN_OCCURRENCE_lookback_window_forgets_old_occurrences():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE)
    acc.feed(payment("A1", "P1", DUE + timedelta(days=5), 5_000, "B1"))
    much_later = DUE + timedelta(days=400)
    acc.feed(bill("A1", "B2", much_later, 7_000))
    fired = acc.fire_due_timers(much_later)
    assert of_type(fired, "dunning.OccurrenceOpened")[0]["payload"]["offenceCount"] == 1


def test_DN_PAYMENT_STOPS_payment_in_full_closes_the_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE)
    closed = of_type(acc.feed(payment("A1", "P1", DUE + timedelta(days=3), 5_000)), "dunning.OccurrenceClosed")
    assert len(closed) == 1 and "DN.PAYMENT_STOPS" in closed[0]["ruleIds"]


def test_DN_PAYMENT_STOPS_reversed_payment_reopens_the_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE)
    acc.feed(payment("A1", "P1", DUE + timedelta(days=3), 5_000))
    reopened = acc.feed(payment("A1", "P1R", DUE + timedelta(days=4), 5_000, status="reversed", reverses="P1"))
    assert [d["decisionType"] for d in reopened] == [
        "dunning.PaymentReversed", "dunning.OccurrenceReopened", "dunning.ReminderScheduled",
    ]
    assert acc.state.bills["B1"].outstanding == 5_000


def test_overpayment_becomes_credit_for_the_next_bill():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.feed(payment("A1", "P1", DUE - timedelta(days=3), 8_000))
    tracked = acc.feed(bill("A1", "B2", DUE + timedelta(days=30), 2_000))[0]
    assert tracked["outcome"] == "settledByCredit"
    assert tracked["payload"]["creditAppliedMinor"] == 2_000
    assert acc.state.credit == 1_000


@pytest.mark.parametrize(
    "local, expected",
    [
        ("2026-10-15T21:30:00", "2026-10-16T08:00:00"),
        ("2026-10-15T06:10:00", "2026-10-15T08:00:00"),
        ("2026-10-15T12:00:00", "2026-10-15T12:00:00"),
        ("2026-10-15T20:00:00", "2026-10-16T08:00:00"),
        ("2026-10-15T08:00:00", "2026-10-15T08:00:00"),
    ],
)
def test_DN_QUIET_HOURS_moves_reminders_to_eight(local, expected):
    moment = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)
    moved = outside_quiet_hours(moment, policy().rules)
    assert moved.replace(tzinfo=None).isoformat() == expected


def test_DN_OCCURRENCE_offence_count_includes_the_current_one():
    assert offence_count(Account().state, DUE, 12) == 1


def test_A_REPLAY_same_inputs_give_identical_decisions():
    def run():
        acc = Account()
        acc.feed(bill("A1", "B1", DUE, 5_000))
        acc.fire_due_timers(DUE)
        acc.feed(payment("A1", "P1", DUE + timedelta(days=3), 1_000))
        return acc.log

    assert run() == run()


def test_A_EVENT_decisions_record_rules_inputs_and_policy_version():
    acc = Account()
    decision = acc.feed(bill("A1", "B1", DUE, 5_000))[0]
    assert decision["ruleIds"] and decision["causedBy"] == [derived_id("test-input", "B1")]
    assert decision["policyVersion"].startswith("dunning-2026.11-2@")
    assert decision["service"] == "dunning"


# A random life of one account: bills, full/partial/late/reversed payments, timers.
steps = st.lists(
    st.tuples(
        st.sampled_from(("bill", "pay", "partial", "reverse", "wait")),
        st.integers(min_value=1, max_value=60),
        st.integers(min_value=100, max_value=50_000),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(steps, st.sampled_from("ABCDE"), st.sampled_from(("diamond", "gold", "silver", "standard")))
def test_DN_FIRST_LETTER_no_sequence_of_events_gives_voice_on_a_first_offence(life, level, tier):
    acc = Account()
    now = DUE
    bills, payments = 0, []
    for action, days, fen in life:
        now += timedelta(days=days)
        if action == "bill":
            bills += 1
            acc.feed(bill("A1", f"B{bills}", now + timedelta(days=14), fen, level, tier))
        elif action in ("pay", "partial"):
            pid = f"P{len(payments) + 1}"
            payments.append(pid)
            acc.feed(payment("A1", pid, now, fen if action == "pay" else fen // 3))
        elif action == "reverse" and payments:
            acc.feed(payment("A1", payments[-1] + "R", now, fen, status="reversed", reverses=payments[-1]))
        acc.fire_due_timers(now)
    for reminder in of_type(acc.log, "dunning.ReminderScheduled"):
        if reminder["payload"]["offenceCount"] == 1:
            assert reminder["payload"]["channel"] in ("letter", "manual", "accountManager")
            assert reminder["payload"]["voiceAllowed"] is False
        else:
            assert reminder["payload"]["offenceCount"] >= 2


def test_DN_OCCURRENCE_late_payment_counts_even_if_it_arrives_before_the_due_check():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    late = acc.feed(payment("A1", "P1", DUE + timedelta(days=6), 5_000, "B1"))
    assert [d["decisionType"] for d in late] == [
        "dunning.OccurrenceOpened", "dunning.PaymentApplied", "dunning.OccurrenceClosed", "dunning.LateFeeCharged",
    ]
    assert late[3]["payload"]["feeMinor"] == 5_000 * 6 * 3 // 1000
    assert late[0]["businessTime"] == DUE.isoformat()
    assert acc.fire_due_timers(DUE + timedelta(days=10)) == []  # the due check was cancelled
    second_due = DUE + timedelta(days=30)
    acc.feed(bill("A1", "B2", second_due, 7_000))
    reminder = of_type(acc.fire_due_timers(second_due), "dunning.ReminderScheduled")[0]
    assert reminder["payload"]["offenceCount"] == 2 and reminder["payload"]["voiceAllowed"]


def test_DN_OCCURRENCE_payment_in_time_processed_after_the_due_check_withdraws_the_occurrence():
    acc = Account()
    acc.feed(bill("A1", "B1", DUE, 5_000))
    acc.fire_due_timers(DUE)
    withdrawn = acc.feed(payment("A1", "P1", DUE - timedelta(hours=2), 5_000, "B1"))
    assert of_type(withdrawn, "dunning.OccurrenceWithdrawn")[0]["reasonCodes"] == ["PAID_BEFORE_DUE"]
    assert acc.state.occurrences == ()
    second_due = DUE + timedelta(days=30)
    acc.feed(bill("A1", "B2", second_due, 7_000))
    reminder = of_type(acc.fire_due_timers(second_due), "dunning.ReminderScheduled")[0]
    assert reminder["payload"]["offenceCount"] == 1 and not reminder["payload"]["voiceAllowed"]
