"""The self-check report (服务标准自查), pure: rows, limits from the policy, breaches with ids."""
from __future__ import annotations

import json

import pytest

from services.common.errors import ConfigError
from services.finance.self_check import MET, NOT_MET, nearest_rank, self_check
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


def test_an_empty_month_meets_every_standard_and_names_its_department(policy):
    report = self_check([], "2026-11", policy)
    assert [r["status"] for r in report["rows"]] == [MET] * 8 and report["status"] == MET
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


def test_C_REPLACE_NOW_p99_of_stored_minus_complaint_time(policy):
    log = [decision("cards.CardReplaced", "2026-11-03T10:00:00+08:00", f"c{n}", payload={"complaintId": f"C{n}"},
                    recordedAt=f"2026-11-03T10:00:0{0 if n else 2}.200000+08:00") for n in range(3)]
    replayed = decision("cards.CardReplaced", "2026-11-02T10:00:00+08:00", "c9", payload={"complaintId": "C9"},
                        recordedAt="2026-11-03T10:00:00+08:00")
    row = rows(self_check(log + [replayed], "2026-11", policy))["cardReplacement"]
    assert row["measured"]["p99Seconds"] == 2.2 and row["status"] == NOT_MET
    assert (row["measured"]["count"], row["measured"]["measured"], row["measured"]["notLive"]) == (4, 3, 1)
    assert row["breaches"] == [{"complaintId": "C0", "seconds": 2.2, "decisionIds": ["d-c0"]}]


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


def test_a_bad_policy_refuses_to_load_naming_the_field(tmp_path):
    document = json.loads(DEFAULT.read_text())
    document["rows"]["restoration"]["limitHours"] = "48"
    bad = tmp_path / "self_check.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="rows.restoration.limitHours"):
        load_self_check_policy(bad)
