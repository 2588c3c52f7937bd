"""The pure part of the finance API's domain gauges: a snapshot row to samples over closed label
sets, and when a refresh is due. The database side is tests/integration/test_finance_gauges.py."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from prometheus_client import REGISTRY

from services.common.errors import ConfigError
from services.finance.gauges import ARREARS_BUCKETS, publish, readings, refresh_due
from services.finance.settings import ApiSettings

AS_OF = datetime(2026, 9, 1, 4, 0, tzinfo=timezone.utc)


def row(**changes) -> dict:
    base = {
        "position": 42, "as_of": AS_OF,
        "acknowledged": 4, "resolved": 1, "held_fen": 13_000, "replies_overdue": 2, "reply_breaches": 3,
        "restorations_pending": 2, "pending_over_sla": 1, "completed_late": 1, "suspensions_in_force": 1,
        "buckets": ["0-30", "31-60", "61-90", "90+"], "occurrences": [1, 2, 0, 1],
        "overdue_fen": [1_100, 11_200, 0, 4_400],
        "replaced": 2, "escalated": 2, "referred": 1,
    }
    return base | changes


def as_dict(samples) -> dict:
    return {(s.gauge.describe()[0].name, s.labels): s.value for s in samples}


def test_every_gauge_and_label_value_is_read_from_its_column():
    got = as_dict(readings(row()))
    assert got[("wuguan_finance_disputes_open", ("acknowledged",))] == 4
    assert got[("wuguan_finance_disputes_open", ("resolved",))] == 1
    assert got[("wuguan_finance_disputes_held_fen", ())] == 13_000
    assert got[("wuguan_finance_dispute_replies_overdue", ())] == 2
    assert got[("wuguan_finance_dispute_reply_sla_breaches", ())] == 3
    assert got[("wuguan_finance_restorations_pending", ())] == 2
    assert got[("wuguan_finance_restorations_over_sla", ("pending",))] == 1
    assert got[("wuguan_finance_restorations_over_sla", ("completed",))] == 1
    assert got[("wuguan_finance_suspensions_in_force", ())] == 1
    assert [got[("wuguan_finance_arrears_open", (b,))] for b in ARREARS_BUCKETS] == [1, 2, 0, 1]
    assert [got[("wuguan_finance_arrears_overdue_fen", (b,))] for b in ARREARS_BUCKETS] == [1_100, 11_200, 0, 4_400]
    assert [got[("wuguan_finance_card_complaints", (o,))] for o in ("replaced", "escalated", "referred")] == [2, 2, 1]
    assert got[("wuguan_finance_projection_as_of_timestamp_seconds", ())] == AS_OF.timestamp()
    assert got[("wuguan_finance_gauges_position", ())] == 42
    assert len(got) == 22  # one sample per gauge and label value, nothing else


def test_buckets_missing_from_the_view_read_zero_and_an_empty_log_has_as_of_zero():
    """DN.OCCURRENCE aging: 0-30, 31-60, 61-90, 90+ always, so a bucket that empties reads 0."""
    got = as_dict(readings(row(as_of=None, buckets=["90+"], occurrences=[3], overdue_fen=[900])))
    assert {b: got[("wuguan_finance_arrears_open", (b,))] for b in ARREARS_BUCKETS} == {
        "0-30": 0, "31-60": 0, "61-90": 0, "90+": 3}
    assert got[("wuguan_finance_arrears_overdue_fen", ("90+",))] == 900
    assert got[("wuguan_finance_projection_as_of_timestamp_seconds", ())] == 0
    empty = as_dict(readings(row(buckets=None, occurrences=None, overdue_fen=None)))
    assert all(empty[("wuguan_finance_arrears_open", (b,))] == 0 for b in ARREARS_BUCKETS)


def test_a_later_snapshot_replaces_every_value_it_covers():
    publish(readings(row(resolved=5, pending_over_sla=3)))
    assert REGISTRY.get_sample_value("wuguan_finance_disputes_open", {"status": "resolved"}) == 5
    publish(readings(row(resolved=0, pending_over_sla=0)))
    assert REGISTRY.get_sample_value("wuguan_finance_disputes_open", {"status": "resolved"}) == 0
    assert REGISTRY.get_sample_value("wuguan_finance_restorations_over_sla", {"state": "pending"}) == 0


@pytest.mark.parametrize("shown, position, last, now, due", [
    (None, 0, None, 0.0, True),      # never read: read now, even an empty log
    (None, 7, 100.0, 105.0, False),  # the first read failed: not again before the interval
    (None, 7, 100.0, 110.0, True),
    (7, 7, 100.0, 500.0, False),     # nothing projected since: the gauges cannot have changed
    (7, 9, 100.0, 105.0, False),     # moved, but read 5 s ago
    (7, 9, 100.0, 110.0, True),
    (9, 3, 100.0, 110.0, True),      # a rebuild moved the checkpoint back
])
def test_refresh_is_due_when_the_checkpoint_moved_and_the_interval_passed(shown, position, last, now, due):
    assert refresh_due(shown, position, last, now, 10.0) is due


def test_gauges_interval_setting_defaults_and_refuses_bad_values():
    env = {"WUGUAN_API_SECRET": "unit-secret-0123456789-0123456789abcdef"}
    assert ApiSettings.from_env(env).gauges_interval_ms == 10_000
    assert ApiSettings.from_env(env | {"WUGUAN_GAUGES_INTERVAL_MS": "0"}).gauges_interval_ms == 0
    with pytest.raises(ConfigError, match="WUGUAN_GAUGES_INTERVAL_MS"):
        ApiSettings.from_env(env | {"WUGUAN_GAUGES_INTERVAL_MS": "-1"})
