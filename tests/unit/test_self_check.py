"""The self-check report (服务标准自查), pure: rows, limits from the policy, breaches with ids."""
from __future__ import annotations

import json

import pytest

from services.common.errors import ConfigError
from services.finance.self_check import MET, NOT_MEASURED, NOT_MET, nearest_rank, self_check, valid_period
from services.finance.self_check_output import render_html, render_text, to_csv
from services.finance.self_check_policy import DEFAULT, load_self_check_policy


def decision(kind: str, at: str, n: str, outcome="ok", payload=None, reasons=(), rules=(), **extra) -> dict:
    return {"decisionId": f"d-{n}", "decisionType": kind, "businessTime": at, "outcome": outcome,
            "reasonCodes": list(reasons), "ruleIds": list(rules), "payload": payload or {}, **extra}


@pytest.fixture
def policy():
    return load_self_check_policy()


def rows(report: dict) -> dict:
    return {r["key"]: r for r in report["rows"]}


def test_M4_an_empty_month_reads_not_measured_on_every_row_never_met(policy):
    report = self_check([], "2026-11", policy)
    assert [r["status"] for r in report["rows"]] == [NOT_MEASURED] * 8 and report["status"] == NOT_MEASURED
    assert [r["met"] for r in report["rows"]] == [None] * 8 and len(report["notMeasured"]) == 8
    assert rows(report)["restoration"]["department"] == "网络运行维护事业部"
    assert report["policyVersion"].startswith("selfcheck-2026.12-1@")


def test_D_REPLY_15D_a_reply_on_day_16_is_a_breach_with_its_decision_ids(policy):
    log = [decision("guard.DisputeOpened", "2026-11-01T10:00:00+08:00", "o1", payload={"ticketId": "K1", "accountId": "A"}),
           decision("guard.DisputeReplied", "2026-11-04T10:00:00+08:00", "r1", "answered", {"ticketId": "K1", "accountId": "A"}),
           decision("guard.DisputeOpened", "2026-11-01T10:00:00+08:00", "o2", payload={"ticketId": "K2", "accountId": "B"}),
           decision("guard.DisputeReplyOverdue", "2026-11-16T10:00:00+08:00", "v2", "overdue", {"ticketId": "K2"}),
           decision("guard.DisputeReplied", "2026-11-17T10:00:00+08:00", "r2", "answeredLate", {"ticketId": "K2", "accountId": "B"})]
    row = rows(self_check(log, "2026-11", policy))["disputeReply"]
    assert row["status"] == NOT_MET and row["ruleId"] == "D.REPLY_15D"
    assert row["breaches"] == [{"ticketId": "K2", "accountId": "B", "days": 16.0, "decisionIds": ["d-o2", "d-v2", "d-r2"]}]
    assert (row["measured"]["count"], row["measured"]["p50"], row["measured"]["max"]) == (2, 3.0, 16.0)


def test_a_decision_outside_the_period_is_not_measured(policy):
    log = [decision("dunning.ReminderDue", "2026-10-31T21:00:00+08:00", "q1", payload={"channel": "letter", "offenceCount": 1}),
           decision("dunning.ReminderDue", "2026-11-02T22:00:00+08:00", "q2", payload={"channel": "voice", "offenceCount": 1})]
    got = rows(self_check(log, "2026-11", policy))
    assert [b["decisionIds"] for b in got["quietHours"]["breaches"]] == [["d-q2"]]
    assert [b["decisionIds"] for b in got["firstArrearsVoice"]["breaches"]] == [["d-q2"]]


def test_C_REPLACE_NOW_every_replacement_is_measured_from_the_store_time_none_left_out(policy):
    """H4: a decision stored long after its complaint is counted (and marked), never dropped."""
    log = [decision("cards.CardReplaced", "2026-11-03T10:00:00+08:00", f"c{n}", payload={"complaintId": f"C{n}"},
                    recordedAt=f"2026-11-03T10:00:00.{200000 + n}+08:00") for n in range(3)]
    replayed = decision("cards.CardReplaced", "2026-11-02T10:00:00+08:00", "c9", payload={"complaintId": "C9"},
                        recordedAt="2026-11-03T10:00:00+08:00")
    row = rows(self_check(log + [replayed], "2026-11", policy))["cardReplacement"]
    assert row["measured"]["p99Seconds"] == 86400.0 and row["status"] == NOT_MET
    assert (row["measured"]["count"], row["measured"]["measured"], row["measured"]["pastLiveWindow"]) == (4, 4, 1)
    assert row["breaches"] == [{"complaintId": "C9", "seconds": 86400.0, "storedPastLiveWindow": True,
                                "decisionIds": ["d-c9"]}]
    assert "store's recorded time" in row["note"]
    fast = rows(self_check(log, "2026-11", policy))["cardReplacement"]
    assert fast["status"] == MET and fast["measured"]["p99Seconds"] == 0.2
    unrecorded = [{k: v for k, v in d.items() if k != "recordedAt"} for d in log]
    assert rows(self_check(unrecorded, "2026-11", policy))["cardReplacement"]["status"] == NOT_MEASURED


def test_D_REPLY_15D_first_answer_of_any_kind_counts_and_a_second_reply_is_no_breach(policy):
    """M2: the opening is found however long ago; a resolution or an automatic credit answers too."""
    long_ago = "2025-01-05T10:00:00+08:00"  # far before any look-back
    log = [decision("guard.DisputeOpened", long_ago, "o1", payload={"ticketId": "K1", "accountId": "A"}),
           decision("guard.DisputeResolved", "2025-01-10T10:00:00+08:00", "s1", "rejected", {"ticketId": "K1", "accountId": "A"}),
           decision("guard.DisputeReplied", "2026-11-04T10:00:00+08:00", "r1", "answered", {"ticketId": "K1", "accountId": "A"}),
           decision("guard.DisputeOpened", "2026-11-01T10:00:00+08:00", "o2", payload={"ticketId": "K2", "accountId": "B"}),
           decision("guard.DisputeAutoCredited", "2026-11-01T10:00:00+08:00", "a2", "upheld", {"ticketId": "K2", "accountId": "B"}),
           decision("guard.DisputeOpened", "2026-10-30T10:00:00+08:00", "o3", payload={"ticketId": "K3", "accountId": "C"}),
           decision("guard.DisputeResolved", "2026-11-02T10:00:00+08:00", "s3", "upheld", {"ticketId": "K3", "accountId": "C"}),
           decision("guard.DisputeReplied", "2026-11-20T10:00:00+08:00", "r3", "answered", {"ticketId": "K3", "accountId": "C"})]
    row = rows(self_check(log, "2026-11", policy))["disputeReply"]
    assert row["status"] == MET and row["breaches"] == []
    assert (row["measured"]["count"], row["measured"]["max"]) == (2, 3.0)  # K2 in 0 days, K3 in 3; K1 answered in 2025


def test_H5_huge_fee_row_fails_when_an_alert_asks_no_immediate_notice_else_says_it_cannot_measure(policy):
    asked = decision("guard.HugeFeeAlert", "2026-11-05T10:00:00+08:00", "h1", "notifyCustomer",
                     {"accountId": "A", "cycle": "2026-11", "notifyCustomerAt": "immediately"})
    row = rows(self_check([asked], "2026-11", policy))["hugeFee"]
    assert row["status"] == NOT_MEASURED and "not measurable" in row["note"] and row["measured"]["notified"] is None
    silent = decision("guard.HugeFeeAlert", "2026-11-06T10:00:00+08:00", "h2", "recorded",
                      {"accountId": "B", "cycle": "2026-11", "notifyCustomerAt": "nextBill"})
    row = rows(self_check([asked, silent], "2026-11", policy))["hugeFee"]
    assert row["status"] == NOT_MET and [b["decisionIds"] for b in row["breaches"]] == [["d-h2"]]


def test_L1_period_must_be_a_month():
    assert valid_period("2026-11") and valid_period("2026-01")
    assert not any(valid_period(p) for p in ("2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "", "abcd-ef", "0000-01"))


def test_nearest_rank_never_invents_a_value():
    assert nearest_rank([1, 2, 3, 4], 0.5) == 2 and nearest_rank([1, 2, 3, 4], 0.95) == 4
    assert nearest_rank([], 0.5) is None


def test_text_and_csv_show_each_row_with_status_and_breach_ids(policy):
    log = [decision("guard.PlannedWorkBlocked", "2026-11-05T10:00:00+08:00", "w1", "blocked",
                    {"workId": "W1", "noticeLeadHours": 71.0}, ["MISSING_72H_NOTICE"], ["CP5.NOTICE_72H"])]
    report = self_check(log, "2026-11", policy)
    assert "不达标  cutover notice ≥ 72 h" in render_text(report) and "d-w1" in render_text(report)
    line = [l for l in to_csv(report).splitlines() if "CP5.NOTICE_72H" in l][0]
    assert "不达标" in line and "d-w1" in line
    page = render_html(report)
    assert page.count("<tr>") == 9 and '<td class="breach">不达标</td>' in page and "d-w1" in page
    assert f'<td class="unmeasured">{NOT_MEASURED}</td>' in page and "note: measured from the store" in render_text(report)


def test_a_bad_policy_refuses_to_load_naming_the_field(tmp_path):
    document = json.loads(DEFAULT.read_text())
    document["rows"]["restoration"]["limitHours"] = "48"
    bad = tmp_path / "self_check.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="rows.restoration.limitHours"):
        load_self_check_policy(bad)


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "2026-4", "November", "0000-01"])
def test_L1_cli_refuses_a_bad_period_in_one_line_with_exit_2(period, capsys):
    from services.composition import main
    assert main(["self-check", "--period", period]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"wuguan self-check: --period {period!r} is not a month: use YYYY-MM (2000-2099) with a month 01-12, e.g. 2026-11"]
