"""CP3 offline billing: dedup, sanity, stale, late, sequence gap, huge fee (pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from harness.guard import T0, Guard, bill, cdr, of_type, standard_rates, tariff


@pytest.fixture
def g():
    guard = Guard()
    guard.feed(tariff(1, T0 - timedelta(days=400), rates=standard_rates(per_min=10, inc=60)))
    return guard


def test_CP3_DEDUP_second_copy_is_suppressed_never_charged(g):
    first = cdr(switch="SW1", origin="O-1", seconds=60)
    g.feed(first)
    copy = cdr(switch="SW1", origin="O-1", seconds=60, seq=first.payload["sequenceNumber"])
    out = g.feed(copy)
    assert [d["decisionType"] for d in out] == ["guard.DuplicateCdrSuppressed"]
    assert out[0]["payload"]["originalUsageId"] == first.payload["usageId"]
    assert out[0]["ruleIds"] == ["CP3.DEDUP"]
    assert g.states["guard-account-A1"].cycle_totals == {"2026-03": 10}


def test_CP3_DEDUP_same_origin_on_another_switch_is_not_a_duplicate(g):
    g.feed(cdr(switch="SW1", origin="O-1"))
    out = g.feed(cdr(switch="SW2", origin="O-1"))
    assert out[0]["decisionType"] == "guard.CdrRated"


@pytest.mark.parametrize("kwargs,reason", [
    ({"seconds": -5}, "NEGATIVE_DURATION"),
    ({"seconds": 90_000}, "ABSURD_DURATION"),
    ({"seconds": 60, "end": T0}, "END_BEFORE_START"),
    ({"seconds": 60, "received": T0 + timedelta(days=2) - timedelta(minutes=6)}, "START_IN_FUTURE"),
])
def test_CP3_SANITY_bad_cdrs_are_dead_lettered_with_the_reason(g, kwargs, reason):
    out = g.feed(cdr(start=T0 + timedelta(days=2), **kwargs))
    assert out == []
    (_, exc), = g.dead
    assert exc.code == "CP3.SANITY" and reason in exc.message
    assert "138" not in exc.message


def test_CP3_SANITY_start_inside_clock_skew_is_accepted(g):
    out = g.feed(cdr(start=T0 + timedelta(days=2), received=T0 + timedelta(days=2) - timedelta(minutes=4)))
    assert out[0]["decisionType"] == "guard.CdrRated"


def test_CP3_STALE_older_than_five_months_is_held_not_billed(g):
    out = g.feed(cdr(start=T0, received=T0 + timedelta(days=31 * 5 + 2)))
    assert out[0]["decisionType"] == "guard.StaleCdrHeld" and out[0]["outcome"] == "heldForReview"
    assert g.states["guard-account-A1"].cycle_totals == {}
    fresh = g.feed(cdr(start=T0, received=T0 + timedelta(days=31 * 4)))
    assert fresh[0]["decisionType"] == "guard.CdrRated"


def month(year: int, month_no: int, day: int = 1, hour: int = 10):
    return T0.replace(year=year, month=month_no, day=day, hour=hour)


def test_CP3_LATE_a_cdr_belongs_to_the_cycle_of_its_call_start_whatever_arrives_first(g):
    g.feed(bill("A1", "B-2026-03", T0, 1000))  # a bill closes no usage cycle
    out = g.feed(cdr(start=T0 + timedelta(days=3), received=T0 + timedelta(days=35)))
    assert out[0]["outcome"] == "charged" and out[0]["payload"]["cycle"] == "2026-03"
    assert "CP3.LATE" not in out[0]["ruleIds"]


def test_CP3_LATE_the_watermark_closes_a_cycle_only_after_its_end_plus_the_grace(g):
    g.feed(cdr(start=month(2026, 3, 20)))
    inside_grace = g.feed(cdr(start=month(2026, 4, 1, hour=1) + timedelta(minutes=59)))
    assert of_type(inside_grace, "guard.UsageCycleClosed") == []
    assert of_type(g.feed(cdr(start=month(2026, 3, 31, hour=23))), "guard.CdrRated")[0]["outcome"] == "charged"
    closing = g.feed(cdr(start=month(2026, 4, 1, hour=2)))
    (closed,) = of_type(closing, "guard.UsageCycleClosed")
    assert closed["ruleIds"] == ["CP3.LATE"] and closing[0] is closed
    assert (closed["payload"]["cycle"], closed["payload"]["chargesMinor"], closed["payload"]["closesAt"]) == (
        "2026-03", 20, "2026-04-01T02:00:00+08:00")


def test_CP3_LATE_usage_of_a_closed_cycle_is_a_late_adjustment_to_its_own_cycle(g):
    g.feed(cdr(start=month(2026, 3, 5)))
    g.feed(cdr(start=month(2026, 4, 2)))
    out = g.feed(cdr(start=month(2026, 3, 28), received=month(2026, 4, 3)))
    body = out[0]["payload"]
    assert out[0]["outcome"] == "lateAdjustment" and "CP3.LATE" in out[0]["ruleIds"]
    assert out[0]["reasonCodes"] == ["CYCLE_CLOSED_LATE_ADJUSTMENT"]
    assert (body["cycle"], body["naturalCycle"], body["flags"]) == ("2026-03", "2026-03", ["LATE_ADJUSTMENT"])
    assert g.states["guard-account-A1"].cycle_totals == {"2026-03": 20, "2026-04": 10}


def test_CP3_SEQUENCE_GAP_open_after_grace_period_alerts_with_the_missing_range(g):
    g.feed(cdr(seq=10, switch="SW9"))
    opened = g.feed(cdr(seq=14, switch="SW9"))
    seq = of_type(opened, "guard.SwitchSequenceRecorded")[0]
    assert seq["outcome"] == "gapOpened" and seq["streamId"] == "guard-switch-SW9"
    g.feed(cdr(seq=12, switch="SW9"))
    due = T0 + timedelta(days=2, hours=2)
    alerts = of_type(g.fire_due_timers(due), "guard.SequenceGapAlert")
    assert len(alerts) == 1
    assert alerts[0]["payload"]["missingRanges"] == [{"from": 11, "to": 11}, {"from": 13, "to": 13}]
    assert alerts[0]["ruleIds"] == ["CP3.SEQUENCE_GAP"]


def test_CP3_SEQUENCE_GAP_filled_inside_grace_period_cancels_the_alert(g):
    g.feed(cdr(seq=1, switch="SW8"))
    g.feed(cdr(seq=3, switch="SW8"))
    filled = of_type(g.feed(cdr(seq=2, switch="SW8")), "guard.SwitchSequenceRecorded")[0]
    assert filled["outcome"] == "gapClosed" and filled["payload"]["cancelsTimers"]
    assert g.fire_due_timers(T0 + timedelta(days=30)) == []


def usage_month(g, year: int, month_no: int, fen: int, account="A1"):
    """One CDR of `fen` (10 fen a minute) on the 10th of the month."""
    return g.feed(cdr(account=account, start=month(year, month_no, 10), seconds=60 * fen // 10))


def test_CP3_HUGE_FEE_once_per_cycle_above_five_times_the_average(g):
    for year, month_no in ((2025, 11), (2025, 12), (2026, 1), (2026, 2)):
        usage_month(g, year, month_no, 1000)  # baseline: the last 3 closed = 1000 avg
    start = T0 + timedelta(days=1)
    out = g.feed(cdr(start=start, seconds=60 * 500))  # 5000 fen: exactly 5x is not more than 5x
    assert of_type(out, "guard.HugeFeeAlert") == []
    out = g.feed(cdr(start=start, seconds=60))
    alert = of_type(out, "guard.HugeFeeAlert")
    assert len(alert) == 1 and alert[0]["payload"]["baselineCycles"] == ["2025-12", "2026-01", "2026-02"]
    assert alert[0]["payload"]["baselineAverageMinor"] == 1000
    assert of_type(g.feed(cdr(start=start, seconds=600)), "guard.HugeFeeAlert") == []


def test_CP3_HUGE_FEE_the_baseline_is_usage_by_call_start_never_a_bill(g):
    for n, month_no in enumerate((11, 12)):
        g.feed(bill("A1", f"B{n}", T0.replace(year=2025, month=month_no), 1))
    assert of_type(g.feed(cdr(seconds=86_000)), "guard.HugeFeeAlert") == []


def test_CP3_HUGE_FEE_no_closed_cycle_no_baseline_no_alert(g):
    assert of_type(g.feed(cdr(seconds=86_000)), "guard.HugeFeeAlert") == []


def test_CP3_HUGE_FEE_fewer_than_three_cycles_uses_what_there_is(g):
    usage_month(g, 2026, 2, 100)
    assert of_type(g.feed(cdr(seconds=60 * 51)), "guard.HugeFeeAlert")


def test_CP3_HUGE_FEE_the_late_1000_fen_cdr_no_longer_makes_a_5000_fen_month_look_like_5x(g):
    """Issue 15's report: six months of 1,000 fen, then 5,000 fen. The sixth month's last CDR was
    consumed after that month's bill; it used to be deferred into the seventh month (6,000 fen:
    an alert). It belongs to its own month, and exactly 5x is not above 5x."""
    for month_no in range(9, 14):
        usage_month(g, 2025 + (month_no > 12), (month_no - 1) % 12 + 1, 1000)
    g.feed(cdr(start=month(2026, 2, 27), seconds=60 * 50))
    g.feed(bill("A1", "B-2026-02", T0.replace(month=2), 1000))
    late = g.feed(cdr(start=month(2026, 2, 28, hour=23), seconds=60 * 50, received=month(2026, 3, 2)))
    assert of_type(late, "guard.CdrRated")[0]["payload"]["cycle"] == "2026-02"
    out = g.feed(cdr(start=month(2026, 3, 3), seconds=60 * 500))
    assert of_type(out, "guard.HugeFeeAlert") == []
    assert g.states["guard-account-A1"].cycle_totals["2026-02"] == 1000
    assert g.states["guard-account-A1"].cycle_totals["2026-03"] == 5000


def test_a_bill_cites_only_the_rule_it_serves(g):
    """A bill closes no usage cycle and checks no fee (issue 17: rule ids name only the rules that
    decided): CP3.HUGE_FEE is cited by a HugeFeeAlert, CP3.LATE by a UsageCycleClosed."""
    [closed] = of_type(g.feed(bill("A1", "B1", T0.replace(month=2), 100)), "guard.BillCycleClosed")
    assert closed["ruleIds"] == ["CP4.OVERDUE_30"] and closed["outcome"] == "closed"


def test_CP3_HUGE_FEE_baseline_is_the_calendar_cycles_before_with_idle_months_as_zero(g):
    """Seed art. 33: the average of the previous 3 cycles; a month without usage is 0 fen, so
    1,000 fen in December then two idle months make a 2,000-fen March abnormal (avg 333)."""
    usage_month(g, 2025, 12, 1000)
    out = g.feed(cdr(start=month(2026, 3, 5), seconds=60 * 200))
    [alert] = of_type(out, "guard.HugeFeeAlert")
    assert alert["payload"]["baselineCycles"] == ["2025-12", "2026-01", "2026-02"]
    assert alert["payload"]["baselineAverageMinor"] == 333 and alert["payload"]["lateAdjustment"] is False


def test_CP3_HUGE_FEE_baseline_starts_at_the_account_first_cdr(g):
    usage_month(g, 2026, 1, 1000)
    out = g.feed(cdr(start=month(2026, 3, 5), seconds=60 * 300))  # 3,000 > 5 x (1000 + 0) / 2
    assert of_type(out, "guard.HugeFeeAlert")[0]["payload"]["baselineCycles"] == ["2026-01", "2026-02"]


def test_CP3_HUGE_FEE_a_late_adjustment_that_pushes_its_closed_cycle_over_alerts_once_marked_late(g):
    for year, month_no in ((2025, 11), (2025, 12), (2026, 1)):
        usage_month(g, year, month_no, 1000)
    assert of_type(usage_month(g, 2026, 2, 5000), "guard.HugeFeeAlert") == []  # exactly 5x
    g.feed(cdr(start=month(2026, 3, 5), seconds=60))  # the watermark closes February
    late = g.feed(cdr(start=month(2026, 2, 20), seconds=60, received=month(2026, 3, 6)))
    assert "LATE_ADJUSTMENT" in of_type(late, "guard.CdrRated")[0]["payload"]["flags"]
    [alert] = of_type(late, "guard.HugeFeeAlert")
    assert alert["payload"]["cycle"] == "2026-02" and alert["payload"]["lateAdjustment"] is True
    assert alert["ruleIds"] == ["CP3.HUGE_FEE", "CP3.LATE"]
    assert "LATE_ADJUSTMENT_CROSSED_THRESHOLD" in alert["reasonCodes"]
    again = g.feed(cdr(start=month(2026, 2, 21), seconds=60, received=month(2026, 3, 6)))
    assert of_type(again, "guard.HugeFeeAlert") == []
