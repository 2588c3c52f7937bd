"""90 days of dunning for thousands of accounts with mixed payment behaviour, pure:
decisions checked against an independent model of the same workload (SPEC.md section 3)."""
from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta

import pytest

from schemas.validation import decode_event

from ..dunning_simulation import END, SHANGHAI, dispute_event, simulate
from harness.dunning import Account, delivery, guard_decision, of_type

ACCOUNTS = int(os.environ.get("WUGUAN_SIM_ACCOUNTS", "2000"))  # `make simulate` runs 10,000


@pytest.fixture(scope="module")
def run():
    sim = simulate(ACCOUNTS)
    disputes = sorted(
        (bill.disputed_at, account.account_id, bill) for account, bill in sim.bills() if bill.disputed_at
    )
    inputs = [(when, decode_event(topic, value)) for when, topic, _, value in sim.messages]
    inputs += [(when, guard_decision(acc, "guard.DisputeOpened", when, dispute_event(acc, bill), bill.bill_id))
               for when, acc, bill in disputes]
    inputs.sort(key=lambda item: item[0])
    accounts: dict[str, Account] = {}
    for when, event in inputs:
        account_id = event.payload.get("accountId") or event.payload["payload"]["accountId"]
        acc = accounts.setdefault(account_id, Account())
        _advance(acc, when)
        acc.feed(event)
    for acc in accounts.values():
        _advance(acc, END)
    return sim, [d for acc in accounts.values() for d in acc.log]


def _advance(acc: Account, until: datetime) -> None:
    """Fire timers up to `until`; every reminder due is delivered (letters posted, calls answered)."""
    while True:
        fired = acc.fire_due_timers(until)
        due = of_type(fired, "dunning.ReminderDue")
        for reminder in due:
            outcome = "answered" if reminder["payload"]["channel"] == "voice" else "posted"
            acc.feed(delivery(reminder["payload"]["accountId"], reminder["decisionId"], outcome,
                              datetime.fromisoformat(reminder["businessTime"]), reminder["payload"]["channel"]))
        if not fired:
            return


def test_DN_OCCURRENCE_every_and_only_the_bills_owed_after_their_due_date(run):
    sim, log = run
    withdrawn = {d["payload"]["occurrenceId"] for d in of_type(log, "dunning.OccurrenceWithdrawn")}
    opened = {(d["payload"]["accountId"], d["payload"]["billId"]): d["payload"]["offenceCount"]
              for d in of_type(log, "dunning.OccurrenceOpened") if d["payload"]["occurrenceId"] not in withdrawn}
    assert opened == sim.expected_occurrences()


def test_DN_FIRST_LETTER_zero_voice_reminders_on_first_offences(run):
    _, log = run
    due = of_type(log, "dunning.ReminderDue")
    first = [d for d in due if d["payload"]["offenceCount"] == 1]
    assert first and all(d["payload"]["channel"] in ("letter", "manual", "accountManager") for d in first)
    repeat = [d for d in due if d["payload"]["offenceCount"] >= 2]
    assert any(d["payload"]["channel"] == "voice" for d in repeat), "DN.REPEAT_VOICE never exercised"


def test_DN_QUIET_HOURS_zero_deliveries_between_20_and_8(run):
    _, log = run
    for d in of_type(log, "dunning.ReminderDue"):
        local = datetime.fromisoformat(d["businessTime"]).astimezone(SHANGHAI)
        assert 8 <= local.hour < 20


def test_DN_LATE_FEE_every_fee_matches_an_independent_calculation(run):
    sim, log = run
    closed_at = {(d["payload"]["accountId"], d["payload"]["billId"]): datetime.fromisoformat(d["businessTime"])
                 for d in of_type(log, "dunning.OccurrenceClosed")}
    charged = Counter()
    for fee in of_type(log, "dunning.LateFeeCharged"):
        charged[(fee["payload"]["accountId"], fee["payload"]["billId"])] += fee["payload"]["feeMinor"]
    assert charged
    for key, total in charged.items():
        assert total == sim.expected_late_fee(*key, closed_at[key]), key


def test_DN_ESCALATE_suspension_asked_only_after_30_days_and_for_each_long_arrears(run):
    sim, log = run
    requests = of_type(log, "dunning.SuspensionRequested")
    asked = {(d["payload"]["accountId"], d["payload"]["billId"]) for d in requests}
    for d in requests:
        assert d["payload"]["daysOverdue"] >= 30 and d["payload"]["remindersDelivered"] >= 1
    long_arrears = {
        (account.account_id, bill.bill_id)
        for account, bill in sim.bills()
        if bill.due + timedelta(days=30, seconds=1) < END and bill.owed_at(bill.due + timedelta(days=30, seconds=1)) > 0
    }
    assert asked <= long_arrears
    # each account with long arrears asked at least once (later ones wait for the guard's answer)
    assert {a for a, _ in asked} == {a for a, _ in long_arrears}


def test_counts_per_channel_and_decision_type(run, capsys):
    _, log = run
    kinds = Counter(d["decisionType"] for d in log)
    channels = Counter((d["payload"]["offenceCount"] >= 2, d["payload"]["channel"]) for d in of_type(log, "dunning.ReminderDue"))
    with capsys.disabled():
        print(f"\n{ACCOUNTS} accounts, 90 days: {dict(sorted(kinds.items()))}")
        print(f"reminders due by (repeat offence, channel): {dict(sorted(channels.items()))}")
    assert kinds["dunning.BillTracked"] == 3 * ACCOUNTS
    assert channels[(False, "voice")] == 0
