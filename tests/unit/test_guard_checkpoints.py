"""CP1 customer data, CP5 planned works, the guard's policy file (pure)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.billing_guard.domain.policy import GuardPolicySchema, build_policy
from services.common.errors import ConfigError
from services.common.policy import load_policy

from harness.guard import DEFAULT_POLICY, T0, Guard, cdr, customer_change, of_type, standard_rates, tariff, work

NOW = T0 + timedelta(days=10)


def test_CP1_AUTHORIZED_role_not_in_the_fields_role_table_is_rejected():
    out = Guard().feed(customer_change("A1", "creditLevel", None, "B", NOW, role="counterClerk", approver="op-2"))
    assert out[0]["decisionType"] == "guard.CustomerDataChangeRejected"
    assert out[0]["reasonCodes"] == ["ROLE_NOT_ALLOWED_FOR_FIELD"]


def test_CP1_STALE_WRITE_old_value_must_match_the_current_one():
    g = Guard()
    assert g.feed(customer_change("A1", "billDelivery", None, "email", NOW))[0]["outcome"] == "accepted"
    out = g.feed(customer_change("A1", "billDelivery", None, "post", NOW))
    assert out[0]["reasonCodes"] == ["STALE_OLD_VALUE"]
    assert g.feed(customer_change("A1", "billDelivery", "email", "post", NOW))[0]["outcome"] == "accepted"


@pytest.mark.parametrize("approver,reason", [(None, "SECOND_APPROVER_MISSING"), ("op-1", "APPROVER_IS_OPERATOR")])
def test_CP1_FOUR_EYES_owner_transfer_needs_a_different_approver(approver, reason):
    out = Guard().feed(customer_change("A1", "billingAccountOwner", None, "C-2", NOW, approver=approver))
    assert out[0]["outcome"] == "rejected" and out[0]["reasonCodes"] == [reason] and "CP1.FOUR_EYES" in out[0]["ruleIds"]


def test_CP1_NO_RETROACTIVE_and_CP1_AUDIT():
    g = Guard()
    out = g.feed(customer_change("A1", "paymentMethod", None, "alipay", NOW, requested=NOW - timedelta(hours=1)))
    assert out[0]["reasonCodes"] == ["RETROACTIVE_EFFECTIVE_TIME"]
    ok = g.feed(customer_change("A1", "customerTier", None, "gold", NOW, role="accountManager", approver="op-9"))[0]
    assert ok["payload"]["before"] is None and ok["payload"]["after"] == "gold"
    assert (ok["payload"]["operatorId"], ok["payload"]["approverId"], ok["payload"]["channel"]) == ("op-1", "op-9", "counter")
    assert ok["payload"]["effectiveFrom"] == NOW.isoformat()


def test_CP1_NO_RETROACTIVE_tariff_plan_change_applies_from_next_cycle_and_drives_rating():
    g = Guard()
    g.feed(tariff(1, T0 - timedelta(days=30), rates=standard_rates(per_min=10)))
    g.feed(tariff(1, T0 - timedelta(days=30), tariff_id="T-CHEAP", rates=standard_rates(per_min=2)))
    out = g.feed(customer_change("A1", "tariffPlan", "T-STD", "T-CHEAP", NOW, role="counterClerk"))
    assert out[0]["payload"]["effectiveFrom"] == T0.replace(month=4).isoformat()
    same_cycle = g.feed(cdr(start=NOW + timedelta(days=1)))[0]["payload"]
    next_cycle = g.feed(cdr(start=T0.replace(month=4) + timedelta(hours=1)))[0]["payload"]
    assert (same_cycle["tariffId"], next_cycle["tariffId"]) == ("T-STD", "T-CHEAP")
    assert next_cycle["amountMinor"] == 2


def _work(**kw):
    return Guard().feed(work("W1", T0, T0 + timedelta(days=5), **kw))[0]


def test_CP5_PROVINCIAL_and_NOTICE_72H_cleared_when_both_present():
    d = _work(approvals=("provincial",), notices=(T0 - timedelta(hours=1),))
    assert d["decisionType"] == "guard.PlannedWorkCleared"
    assert {"CP5.PROVINCIAL", "CP5.NOTICE_72H"} <= set(d["ruleIds"])


def test_CP5_blocked_names_every_missing_approval_and_notice():
    d = _work(provinces=("Jiangsu", "Zhejiang"), vip=True, notices=(T0 + timedelta(days=4),))
    assert d["decisionType"] == "guard.PlannedWorkBlocked"
    assert d["reasonCodes"] == ["MISSING_GROUP_HQ_APPROVAL", "MISSING_REGULATOR_APPROVAL", "MISSING_72H_NOTICE"]
    assert {"CP5.CROSS_PROVINCE", "CP5.LONG_OR_VIP"} <= set(d["ruleIds"])


def test_CP5_LONG_OR_VIP_over_24h_needs_group_hq_and_regulator_no_notice_rule():
    d = _work(hours=25, approvals=("provincial", "groupHq"))
    assert d["reasonCodes"] == ["MISSING_REGULATOR_APPROVAL"]
    assert _work(hours=25, approvals=("provincial", "groupHq", "regulator"))["outcome"] == "cleared"


def test_CP5_OUTAGE_CREDIT_cleared_work_credits_each_affected_account_per_started_hour():
    g = Guard()
    start = T0 + timedelta(days=5)
    g.feed(work("W1", T0, start, approvals=("provincial",), notices=(T0 - timedelta(hours=1),), accounts=("A1", "A2")))
    out = g.feed(work("W1", start, start, action="outageReported", accounts=("A1", "A2"),
                      outage=(start, start + timedelta(minutes=61))))
    assert [d["payload"]["accountId"] for d in out] == ["A1", "A2"]
    assert all(d["payload"]["creditMinor"] == 100 and d["ruleIds"] == ["CP5.OUTAGE_CREDIT"] for d in out)


def test_CP5_OUTAGE_CREDIT_refused_for_a_blocked_work():
    g = Guard()
    g.feed(work("W1", T0, T0 + timedelta(days=5)))
    out = g.feed(work("W1", T0, T0, action="outageReported", outage=(T0, T0 + timedelta(hours=1))))
    assert out[0]["reasonCodes"] == ["WORK_NOT_CLEARED"]


def test_policy_file_loads_and_a_bad_field_is_named(tmp_path):
    assert load_policy(DEFAULT_POLICY, GuardPolicySchema(), build_policy).version.startswith("guard-")
    doc = json.loads(DEFAULT_POLICY.read_text())
    doc["hugeFee"]["factor"] = 0
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="hugeFee.factor"):
        load_policy(bad, GuardPolicySchema(), build_policy)
    doc = json.loads(DEFAULT_POLICY.read_text())
    doc["customerData"]["fourEyesFields"] = ["creditLevel"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="customerData.fourEyesFields"):
        load_policy(bad, GuardPolicySchema(), build_policy)


def test_CP4_IMPORTANT_policy_roles_that_answer_for_anyone_must_be_approver_roles(tmp_path):
    doc = json.loads(DEFAULT_POLICY.read_text())
    doc["suspension"]["importantApproval"]["anyAccountApproverRoles"] = ["counterClerk"]
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="suspension.importantApproval.anyAccountApproverRoles"):
        load_policy(bad, GuardPolicySchema(), build_policy)
