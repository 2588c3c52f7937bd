"""Pure pieces of the finance read side: cursor codec, aging buckets, money,
phone masking, CSV cells, and the projection rules' shape."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ConfigError
from services.finance import cursor, tokens
from services.finance.aging import ARREARS_EDGES, DISPUTE_EDGES, bucket_labels, bucket_of, buckets, whole_days
from services.finance.csv_export import cell, rows_to_csv
from services.finance.lists import LISTS, BadRequest, build_query
from services.finance.money import yuan
from services.finance.privacy import masked
from services.finance.projection_rules import RULES, Row, projection_ops, timer_event_id, timer_origin
from services.finance.settings import ApiSettings

SECRET = "unit-secret-0123456789-0123456789abcdef"
NOW = 1_800_000_000
UTC = timezone.utc


# --- tokens: tests/unit/test_finance_tokens.py -----------------------------------------------


def test_the_api_refuses_to_start_without_a_secret():
    with pytest.raises(ConfigError) as exc:
        ApiSettings.from_env({})
    assert exc.value.field == "WUGUAN_API_SECRET"
    with pytest.raises(ConfigError):
        ApiSettings.from_env({"WUGUAN_API_SECRET": "short"})
    with pytest.raises(ConfigError) as exc:
        ApiSettings.from_env({"WUGUAN_API_SECRET": SECRET, "WUGUAN_API_PORT": "http"})
    assert exc.value.field == "WUGUAN_API_PORT"
    assert ApiSettings.from_env({"WUGUAN_API_SECRET": SECRET}).port == 8110


# --- cursors --------------------------------------------------------------------------------------

@given(st.datetimes(timezones=st.just(UTC)), st.text())
def test_cursors_round_trip(moment, key):
    assert cursor.decode(cursor.encode(moment, key)) == (moment, key)


@pytest.mark.parametrize("bad", ["", "!!!", "bm90IGpzb24", cursor.encode("x", "k")[:-3] + "@@@",
                                 "WzEsMl0"])  # [1,2]
def test_garbage_cursors_are_refused(bad):
    with pytest.raises(cursor.CursorError):
        cursor.decode(bad)


def test_a_list_query_puts_every_request_value_in_bind_parameters():
    evil = "x'; DROP TABLE finance.disputes; --"
    query = build_query(LISTS["disputes"], {"account": evil, "status": evil}, 10, None)
    assert evil not in query.sql and evil in query.args
    with pytest.raises(BadRequest):
        build_query(LISTS["disputes"], {evil: "1"}, 10, None)
    with pytest.raises(BadRequest):
        build_query(LISTS["disputes"], {}, 10, cursor.encode("not a time", "k"))


# --- aging ----------------------------------------------------------------------------------------

def test_arrears_buckets_are_0_30_31_60_61_90_and_90_plus():
    assert bucket_labels(ARREARS_EDGES) == ["0-30", "31-60", "61-90", "90+"]
    assert [bucket_of(d, ARREARS_EDGES) for d in (0, 30, 31, 60, 61, 90, 91, 400)] == [
        "0-30", "0-30", "31-60", "31-60", "61-90", "61-90", "90+", "90+"]
    assert bucket_labels(DISPUTE_EDGES)[1] == "8-15"  # D.REPLY_15D is the edge of a bucket


def test_bucket_ages_are_whole_days_against_the_as_of_time():
    as_of = datetime(2026, 6, 1, 12, tzinfo=UTC)
    anchor = as_of - timedelta(days=30, hours=23)
    assert whole_days(anchor, as_of) == 30 and whole_days(as_of + timedelta(days=2), as_of) == 0
    rows = buckets([(anchor, 100), (anchor - timedelta(hours=1), 50), (as_of - timedelta(days=95), 7)],
                   as_of, ARREARS_EDGES)
    assert rows == [{"bucket": "0-30", "count": 1, "amountMinor": 100},
                    {"bucket": "31-60", "count": 1, "amountMinor": 50},
                    {"bucket": "61-90", "count": 0, "amountMinor": 0},
                    {"bucket": "90+", "count": 1, "amountMinor": 7}]


# --- money, privacy, CSV ----------------------------------------------------------------------------

@given(st.integers(min_value=-10**15, max_value=10**15))
def test_yuan_is_exact(fen):
    text = yuan(fen)
    whole, cents = text.lstrip("-").split(".")
    assert len(cents) == 2 and (int(whole) * 100 + int(cents)) * (-1 if text.startswith("-") else 1) == fen


def test_yuan_examples():
    assert (yuan(0), yuan(5), yuan(1500), yuan(-1), yuan(123456)) == ("0.00", "0.05", "15.00", "-0.01", "1234.56")


def test_phone_numbers_are_masked_by_key_and_inside_text_but_ids_are_not():
    uuid_like = "5b0d3c1e-7a52-4f0e-9a49-138123456789"
    out = masked({"callingNumber": "13812345678", "calledNumber": "+8613987654321", "msisdn": "02588886666",
                  "reason": "call me on 13812345678 or +8613912345678", "id": uuid_like, "n": 13812345678,
                  "list": [{"calledNumber": "13987654321"}]})
    assert out["callingNumber"] == "138****5678" and out["calledNumber"] == "+861******4321"
    assert out["msisdn"] == "025****6666"
    assert "13812345678" not in out["reason"] and "13912345678" not in out["reason"]
    assert out["id"] == uuid_like and out["list"][0]["calledNumber"] == "139****4321"


def test_csv_cells_neutralise_formulas_and_show_yuan():
    assert cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and cell(-5) == "-5" and cell(True) == "true"
    text = rows_to_csv([{"amountMinor": 1234, "reason": "@SUM(A1)"}], ["amountMinor", "reason"], True)
    assert text.splitlines() == ["amountMinor,amountYuan,reason", "1234,12.34,'@SUM(A1)"]


# --- projection rules -------------------------------------------------------------------------------

def _row(kind: str, body: dict, caused_by=("in-1",), stream="guard-account-A9") -> Row:
    return Row(7, "d-1", kind, stream, datetime(2026, 1, 1, tzinfo=UTC),
               {"decisionId": "d-1", "decisionType": kind, "outcome": "x", "reasonCodes": [],
                "causedBy": list(caused_by), "payload": body})


def test_every_rule_emits_parameterised_sql_only():
    assert all(op[0].count("$") >= 1 for op in projection_ops(_row("guard.DisputeClosed", {"ticketId": "T"})))
    assert projection_ops(_row("guard.CdrRated", {"accountId": "A"})) == []
    assert "cards.CardReplaced" in RULES and "dunning.LateFeeCharged" in RULES


def test_a_timer_leads_back_to_the_decision_that_set_it():
    assert timer_origin(7, "tm") == (timer_event_id("tm"), 7)


def test_operations_name_the_row_they_must_stay_in_order_with():
    due = _row("dunning.ReminderDue", {"accountId": "B2", "occurrenceId": "O1", "channel": "letter"},
               stream="dunning-account-B2")
    assert [op[2] for op in projection_ops(due)] == ["reminder:d-1", "occurrence:O1"]
    assert [op[2] for op in projection_ops(_row("guard.DisputeReplyOverdue", {"ticketId": "T9"}))] == ["dispute:T9"]
    # Suspensions and restorations pick among the account's rows: one key for the account.
    missed = _row("guard.RestorationSlaMissed", {"accountId": "A9", "restoreBy": "2026-01-01T00:00:00+08:00"})
    assert [op[2] for op in projection_ops(missed)] == ["cp4:A9"]


def test_batches_keep_each_keys_operations_in_order_and_never_two_of_a_key_together():
    from services.finance.projector import _batches

    ops = [("insert d", (1,), "A"), ("update d", (2,), "A"), ("insert d", (3,), "B"), ("update d", (4,), "A"),
           ("update d", (5,), "C"), ("insert r", (6,), "C"), ("update d", (7,), "B"), ("insert d", (8,), "B")]
    assert _batches(ops) == [("insert d", [(1,), (3,)]), ("update d", [(2,), (5,), (7,)]),
                             ("update d", [(4,)]), ("insert r", [(6,)]), ("insert d", [(8,)])]
