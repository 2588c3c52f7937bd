"""billing_guard rules of SPEC.md sections 1-2 on the real runtime: BatchProcessor, the real
broker (inputs' dead letters, timers on the business clock) and a fresh Postgres per test.
Each test is named after the rule ids it proves; assertions read the stored decisions."""
from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from schemas.billing import CUSTOMER_FIELDS
from services.billing_guard.domain.itemized_bill import itemized_bill
from services.billing_guard.worker import DEFINITION
from services.common.ids import derived_id

from ..kafka_helpers import read_topic
from harness import dunning as dn
from .guard_inputs import (CALLED, CALLING, SHANGHAI, bill, cdr, customer, dispute, dunning_decision, fen, payment, restored,
                           tariff, uid, work)
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration


def at(y, m, d, hh=10, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI)


class Harness(RuntimeHarness):
    def __init__(self, bootstrap, database_url):
        super().__init__(bootstrap, database_url, DEFINITION, timer_clock="business")

    async def account(self, account: str) -> list[dict]:
        return await self.stream(f"guard-account-{account}")

    async def of_type(self, stream: str, kind: str) -> list[dict]:
        return [d for d in await self.stream(stream) if d["decisionType"] == kind]

    async def tick(self, when: datetime) -> int:
        """Move the business clock to `when` (an unrelated input at that time), then fire due timers."""
        await self.feed(payment(uid("CLOCK"), uid("P-CLOCK"), when, 1))
        return await self.fire_due_timers()


@pytest.fixture
async def guard(kafka_bootstrap, database_url):
    async with Harness(kafka_bootstrap, database_url) as h:
        yield h


def of(decisions: list[dict], kind: str) -> list[dict]:
    return [d for d in decisions if d["decisionType"] == kind]


async def standard_tariff(guard, per_min=10, tariff_id="T-STD"):
    await guard.feed(tariff(tariff_id, 1, at(2026, 1, 1, 0), per_min, at(2025, 12, 20)))


# ---------------------------------------------------------------- CP1 customer data


async def test_CP1_BILLING_FIELDS_every_billing_field_passes_the_checkpoint_and_others_are_dead_lettered(guard):
    account, when = uid("A"), at(2026, 3, 10)
    role_for = {"tariffPlan": "counterClerk", "billingAccountOwner": "billingAdmin", "creditLevel": "creditOfficer",
                "customerTier": "accountManager", "importantFlag": "accountManager", "billDelivery": "selfService",
                "paymentMethod": "counterClerk", "msisdnOwnership": "billingAdmin"}
    for n, name in enumerate(CUSTOMER_FIELDS):
        old = "T-STD" if name == "tariffPlan" else None
        await guard.feed(customer(account, name, old, f"new-{name}", when + timedelta(minutes=n), role=role_for[name],
                                  operator="op-1", approver="op-2"))
    changed = of(await guard.account(account), "guard.CustomerDataChanged")
    assert sorted(d["payload"]["field"] for d in changed) == sorted(CUSTOMER_FIELDS)
    assert all("CP1.BILLING_FIELDS" in d["ruleIds"] for d in changed)
    # A field outside the billing list is not a CP1 request at all: the contract refuses it.
    topic, value = customer(account, "creditLevel", None, "Z", when, role="creditOfficer", request_id="R-NICK-" + account)
    raw = orjson.loads(value)
    raw["payload"]["field"] = "nickname"
    await guard.feed((topic, orjson.dumps(raw)))
    letters = [orjson.loads(r.value) for r in await read_topic(guard.bootstrap, "billing.customer.v1.dlq")]
    mine = [l for l in letters if "R-NICK-" + account in l["value"]]
    assert len(mine) == 1 and mine[0]["error"]["code"] == "payload_invalid"
    assert len(await guard.account(account)) == len(CUSTOMER_FIELDS)


async def test_CP1_AUTHORIZED_STALE_WRITE_FOUR_EYES_AUDIT_through_the_store(guard):
    account, when = uid("A"), at(2026, 3, 10)
    steps = [
        customer(account, "creditLevel", None, "A", when, role="counterClerk", approver="op-2"),  # wrong role
        customer(account, "creditLevel", None, "A", when, role="creditOfficer"),  # no second approver
        customer(account, "creditLevel", None, "A", when, role="creditOfficer", operator="op-1", approver="op-1"),
        customer(account, "creditLevel", None, "A", when, role="creditOfficer", operator="op-1", approver="op-2"),
        customer(account, "creditLevel", None, "B", when, role="creditOfficer", operator="op-3", approver="op-2"),
        customer(account, "creditLevel", "A", "B", when, role="creditOfficer", operator="op-3", approver="op-2"),
        customer(account, "paymentMethod", None, "alipay", when, role="selfService"),  # not four-eyes
    ]
    for step in steps:
        await guard.feed(step)
    log = await guard.account(account)
    assert [(d["outcome"], d["reasonCodes"]) for d in log] == [
        ("rejected", ["ROLE_NOT_ALLOWED_FOR_FIELD"]),
        ("rejected", ["SECOND_APPROVER_MISSING"]),
        ("rejected", ["APPROVER_IS_OPERATOR"]),
        ("accepted", []),
        ("rejected", ["STALE_OLD_VALUE"]),  # states None, current is A: no lost update
        ("accepted", []),
        ("accepted", []),
    ]
    assert all("CP1.AUTHORIZED" in d["ruleIds"] and "CP1.STALE_WRITE" in d["ruleIds"] for d in log)
    assert all("CP1.FOUR_EYES" in d["ruleIds"] for d in log[:6]) and "CP1.FOUR_EYES" not in log[6]["ruleIds"]
    audit = log[5]["payload"]
    assert {k: audit[k] for k in ("before", "after", "operatorId", "operatorRole", "approverId", "channel", "reason")} == {
        "before": "A", "after": "B", "operatorId": "op-3", "operatorRole": "creditOfficer", "approverId": "op-2",
        "channel": "counter", "reason": "customer request"}
    assert "CP1.AUDIT" in log[5]["ruleIds"] and log[5]["causedBy"]


async def test_CP1_NO_RETROACTIVE_tariff_plan_applies_from_next_cycle_and_past_times_are_refused(guard):
    account = uid("A")
    await guard.feed(tariff("T-STD", 1, at(2026, 1, 1, 0), 10, at(2025, 12, 20)),
                     tariff("T-GOLD", 1, at(2026, 1, 1, 0), 5, at(2025, 12, 20)))
    accepted_at = at(2026, 3, 10)
    await guard.feed(customer(account, "tariffPlan", "T-STD", "T-GOLD", accepted_at, role="counterClerk"))
    await guard.feed(customer(account, "billDelivery", None, "email", accepted_at, role="selfService",
                              requested=accepted_at - timedelta(days=9)))
    await guard.feed(customer(account, "billDelivery", None, "post", accepted_at, role="selfService",
                              requested=accepted_at + timedelta(days=10)))
    march, april = cdr(account, "SW-NR", 1, at(2026, 3, 20)), cdr(account, "SW-NR", 2, at(2026, 4, 2))
    await guard.feed(march, april)
    log = await guard.account(account)
    plan, retro, later = log[:3]
    assert plan["outcome"] == "accepted" and plan["payload"]["effectiveFrom"] == "2026-04-01T00:00:00+08:00"
    assert retro["outcome"] == "rejected" and retro["reasonCodes"] == ["RETROACTIVE_EFFECTIVE_TIME"]
    assert later["outcome"] == "accepted" and later["payload"]["effectiveFrom"] == "2026-03-20T10:00:00+08:00"
    assert all("CP1.NO_RETROACTIVE" in d["ruleIds"] for d in log[:3])
    rated = of(log, "guard.CdrRated")
    assert [(d["payload"]["tariffId"], d["payload"]["amountMinor"]) for d in rated] == [("T-STD", 20), ("T-GOLD", 10)]


# ---------------------------------------------------------------- CP2 tariffs


async def test_CP2_PUBLISHED_and_CP2_TRACEABLE_and_approved_increase_through_the_store(guard):
    account = uid("A")
    await guard.feed(tariff("T-STD", 1, at(2026, 1, 10), 10, at(2026, 1, 5)))
    decided = at(2026, 1, 20)
    await guard.feed(
        tariff("T-STD", 2, at(2026, 2, 5), 8, decided, published=at(2026, 2, 10)),  # effective before published
        tariff("T-STD", 2, at(2026, 1, 15), 8, decided, published=at(2026, 1, 12)),  # retroactive
        tariff("T-STD", 2, at(2026, 2, 1), 15, decided, approvalRef="APP-7", filingRef="BA-2026-7"),  # filed increase
    )
    catalogue = await guard.stream("guard-tariffs")
    assert [(d["outcome"], d["reasonCodes"][:1]) for d in catalogue] == [
        ("accepted", []), ("rejected", ["EFFECTIVE_BEFORE_PUBLISHED"]), ("rejected", ["RETROACTIVE"]),
        ("accepted", ["INCREASE_APPROVED_AND_FILED"])]
    assert all("CP2.PUBLISHED" in d["ruleIds"] for d in catalogue)
    increase = catalogue[3]["payload"]
    assert (increase["increase"], increase["approvalRef"], increase["filingRef"]) == (True, "APP-7", "BA-2026-7")
    # Rated after both versions exist, each CDR names the version in force at its start.
    await guard.feed(cdr(account, "SW-TR", 1, at(2026, 1, 25), received=at(2026, 2, 3)),
                     cdr(account, "SW-TR", 2, at(2026, 2, 2), received=at(2026, 2, 3)))
    rated = of(await guard.account(account), "guard.CdrRated")
    assert [(d["payload"]["tariffId"], d["payload"]["tariffVersion"], d["payload"]["amountMinor"]) for d in rated] == [
        ("T-STD", 1, 20), ("T-STD", 2, 30)]
    assert all({"CP2.TRACEABLE", "CP2.EFFECTIVE_DATING"} <= set(d["ruleIds"]) for d in rated)


# ---------------------------------------------------------------- CP3 offline billing


async def test_CP3_LATE_usage_of_a_closed_cycle_is_a_late_adjustment_to_its_own_cycle(guard):
    account = uid("A")
    await standard_tariff(guard)
    await guard.feed(cdr(account, "SW-L", 1, at(2026, 3, 5)))
    await guard.feed(bill(account, "B-MAR", "2026-03", 20))  # recorded; closes no usage cycle
    await guard.feed(cdr(account, "SW-L", 2, at(2026, 3, 30), received=at(2026, 4, 3)))
    await guard.feed(cdr(account, "SW-L", 3, at(2026, 4, 1, 2)))  # watermark: 1 April 02:00 = end + 2 h grace
    await guard.feed(cdr(account, "SW-L", 4, at(2026, 3, 28), received=at(2026, 4, 3)))
    log = await guard.account(account)
    (closed,) = of(log, "guard.UsageCycleClosed")
    assert (closed["payload"]["cycle"], closed["payload"]["chargesMinor"], closed["ruleIds"]) == ("2026-03", 40, ["CP3.LATE"])
    in_cycle, after_bill, april, late = of(log, "guard.CdrRated")
    assert [d["outcome"] for d in (in_cycle, after_bill, april)] == ["charged"] * 3
    assert (after_bill["payload"]["cycle"], late["payload"]["cycle"], late["outcome"]) == ("2026-03", "2026-03", "lateAdjustment")
    assert late["payload"]["flags"] == ["LATE_ADJUSTMENT"] and "CP3.LATE" in late["ruleIds"]
    assert late["reasonCodes"] == ["CYCLE_CLOSED_LATE_ADJUSTMENT"]
    decisions = [d for d in log]
    march = itemized_bill(decisions, account, "2026-03")
    flagged = [l["usageId"] for l in march["lines"] if "LATE_ADJUSTMENT" in l["flags"]]
    assert march["chargesMinor"] == 60 and flagged == [late["payload"]["usageId"]]
    assert [l["usageId"] for l in itemized_bill(decisions, account, "2026-04")["lines"]] == [april["payload"]["usageId"]]


async def test_CP3_STALE_usage_older_than_the_dispute_window_is_held_not_billed(guard):
    account = uid("A")
    await guard.feed(tariff("T-STD", 1, at(2025, 12, 1, 0), 10, at(2025, 11, 20)))
    received = at(2026, 7, 1)
    await guard.feed(cdr(account, "SW-ST", 1, at(2026, 1, 10), received=received),
                     cdr(account, "SW-ST", 2, at(2026, 2, 5), received=received))
    log = await guard.account(account)
    stale, charged = of(log, "guard.StaleCdrHeld"), of(log, "guard.CdrRated")
    assert len(stale) == 1 and stale[0]["outcome"] == "heldForReview"
    assert stale[0]["ruleIds"] == ["CP3.STALE"] and stale[0]["reasonCodes"] == ["OLDER_THAN_DISPUTE_WINDOW"]
    assert stale[0]["payload"]["startDateTime"] == "2026-01-10T10:00:00+08:00"
    assert [d["payload"]["startDateTime"] for d in charged] == ["2026-02-05T10:00:00+08:00"]


async def test_CP3_HUGE_FEE_once_per_cycle_above_5x_the_3_cycle_average_and_never_without_baseline(guard):
    account, newcomer = uid("A"), uid("A")
    await standard_tariff(guard)
    # Usage by call start of January-March (10 fen a minute): 1000, 2000, 3000; the bills say otherwise.
    for n, (month, minutes) in enumerate(((1, 100), (2, 200), (3, 300)), 1):
        await guard.feed(cdr(account, "SW-H", n, at(2026, month, 10), seconds=minutes * 60),
                         bill(account, f"B-{n}", f"2026-{month:02d}", 1))
    # Average 2000 x 5 = 10000: a total of exactly 10000 is not above it, 10010 is.
    minutes = [10, 990, 1, 1]
    for n, m in enumerate(minutes, 4):
        await guard.feed(cdr(account, "SW-H", n, at(2026, 4, 2 + n), seconds=m * 60))
        await guard.feed(cdr(newcomer, "SW-H2", n, at(2026, 4, 2 + n), seconds=m * 60))
    log = await guard.account(account)
    alerts = of(log, "guard.HugeFeeAlert")
    assert len(alerts) == 1
    body = alerts[0]["payload"]
    assert (body["cycle"], body["cycleChargesMinor"], body["baselineAverageMinor"], body["baselineCycles"]) == (
        "2026-04", 10010, 2000, ["2026-01", "2026-02", "2026-03"])
    assert alerts[0]["outcome"] == "notifyCustomer" and alerts[0]["ruleIds"] == ["CP3.HUGE_FEE"]
    third = of(log, "guard.CdrRated")[5]
    assert alerts[0]["causedBy"] == third["causedBy"]  # raised by the CDR that crossed the line
    assert of(await guard.account(newcomer), "guard.HugeFeeAlert") == []


# ---------------------------------------------------------------- CP4 arrears suspension


DUE = datetime(2026, 6, 15, 23, 59, tzinfo=SHANGHAI)


def dunning_request(account: str, *, deliver=True, important=False, paid_before=0) -> tuple[dn.Account, dict]:
    """Run the real dunning domain until it asks the guard to suspend (DN.ESCALATE)."""
    acc = dn.Account()
    event = dn.bill(account, f"B-{account}", DUE, 5_000)
    event.payload["customer"]["important"] = important
    acc.feed(event)
    if paid_before:
        acc.feed(dn.payment(account, f"P0-{account}", DUE + timedelta(days=10), paid_before, f"B-{account}"))
    reminders = dn.of_type(acc.fire_due_timers(DUE + timedelta(days=29)), "dunning.ReminderDue")
    if deliver:
        acc.feed(dn.delivery(account, reminders[0]["decisionId"], "answered", DUE + timedelta(days=12), "letter"))
    requests = dn.of_type(acc.fire_due_timers(DUE + timedelta(days=31)), "dunning.SuspensionRequested")
    assert len(requests) == 1
    return acc, requests[0]


def request_time(request: dict) -> datetime:
    return datetime.fromisoformat(request["businessTime"])


async def test_CP4_OVERDUE_30_REMINDED_approves_real_dunning_requests_only_when_both_hold(guard):
    ok, no_reminder, early = uid("A"), uid("A"), uid("A")
    _, request = dunning_request(ok)
    _, unreminded = dunning_request(no_reminder, deliver=False)
    _, early_request = dunning_request(early)
    # A request computed at 29 days (a defective or early sender): the guard checks the period itself.
    early_request = {**early_request, "decisionId": derived_id("early", early_request["decisionId"]),
                     "businessTime": (DUE + timedelta(days=29)).isoformat()}
    await guard.feed(dunning_decision(request), dunning_decision(unreminded), dunning_decision(early_request))
    approved = (await guard.account(ok))[0]
    assert approved["decisionType"] == "guard.SuspensionApproved" and approved["outcome"] == "approved"
    assert approved["causedBy"] == [request["decisionId"]]
    assert approved["payload"]["overduePeriodDays"] == 30 and approved["payload"]["undisputedOverdueMinor"] == 5_000
    assert set(approved["ruleIds"]) >= {"CP4.OVERDUE_30", "CP4.REMINDED", "CP4.NET_OF_DISPUTES",
                                         "CP4.NO_PAYMENT_IN_FLIGHT", "CP4.IMPORTANT"}
    denied = (await guard.account(no_reminder))[0]
    assert (denied["decisionType"], denied["reasonCodes"]) == ("guard.SuspensionDenied", ["NO_REMINDER_DELIVERED"])
    too_early = (await guard.account(early))[0]
    assert (too_early["decisionType"], too_early["reasonCodes"]) == ("guard.SuspensionDenied", ["NOT_OVERDUE_LONG_ENOUGH"])


async def test_CP4_NET_OF_DISPUTES_NO_PAYMENT_IN_FLIGHT_IMPORTANT_deny_with_their_reasons(guard):
    disputed, partly, paying, vip, vip_cp1 = (uid("A") for _ in range(5))
    requests = {}
    for account in (disputed, partly, paying, vip_cp1):
        _, requests[account] = dunning_request(account, paid_before=1_000 if account == partly else 0)
    _, requests[vip] = dunning_request(vip, important=True)
    opened = DUE + timedelta(days=20)
    await guard.feed(dispute(disputed, "K-" + disputed, "open", opened, billId=f"B-{disputed}",
                             disputedItems=["L-1"], disputedAmount=fen(5_000)))
    await guard.feed(dispute(partly, "K-" + partly, "open", opened, billId=f"B-{partly}",
                             disputedItems=["L-1"], disputedAmount=fen(1_500)))
    # partly paid 1000 before the arrears were computed: that payment does not block.
    await guard.feed(payment(partly, "P0-" + partly, DUE + timedelta(days=10), 1_000, bill_id=f"B-{partly}"))
    await guard.feed(payment(paying, "P1-" + paying, request_time(requests[paying]) + timedelta(hours=2), 5_000,
                             status="pending", bill_id=f"B-{paying}"))
    await guard.feed(customer(vip_cp1, "importantFlag", None, "true", opened, role="accountManager",
                              operator="am-1", approver="am-2"))
    await guard.feed(*(dunning_decision(r) for r in requests.values()))

    async def answer(account):
        return of((await guard.account(account)), "guard.SuspensionApproved") + of(
            await guard.account(account), "guard.SuspensionDenied")

    (d,) = await answer(disputed)
    assert (d["outcome"], d["reasonCodes"], d["payload"]["undisputedOverdueMinor"]) == (
        "denied", ["NOTHING_UNDISPUTED_OVERDUE"], 0)
    (p,) = await answer(partly)
    assert p["outcome"] == "approved" and p["payload"]["undisputedOverdueMinor"] == 4_000 - 1_500
    (f,) = await answer(paying)
    assert (f["outcome"], f["reasonCodes"]) == ("denied", ["PAYMENT_IN_FLIGHT"])
    for account in (vip, vip_cp1):  # CP4.IMPORTANT: held for an account manager (test_vip_approval_e2e.py)
        assert await answer(account) == []
        (v,) = await guard.of_type(f"guard-account-{account}", "guard.SuspensionAwaitingApproval")
        assert (v["outcome"], v["reasonCodes"]) == ("awaitingApproval", ["IMPORTANT_CUSTOMER_NEEDS_ACCOUNT_MANAGER"])


async def test_CP4_RESTORE_48H_and_CP4_TERMINATION_on_the_business_clock(guard):
    payer, debtor, prompt = uid("A"), uid("A"), uid("A")
    _, pay_request = dunning_request(payer)
    _, debt_request = dunning_request(debtor)
    _, prompt_request = dunning_request(prompt)
    await guard.feed(dunning_decision(pay_request), dunning_decision(debt_request), dunning_decision(prompt_request))
    owed = 5_000 + pay_request["payload"]["lateFeeToDateMinor"]
    paid_at = request_time(pay_request) + timedelta(days=2)
    await guard.feed(payment(payer, "P-part", paid_at - timedelta(hours=1), 1_000))
    await guard.feed(payment(payer, "P-rest", paid_at, owed - 1_000))
    await guard.feed(payment(prompt, "P-all", paid_at, owed))
    # The network reports the prompt payer's line back after 20 h: recorded, deadline stopped.
    await guard.feed(restored(prompt, paid_at + timedelta(hours=20)))
    (done,) = await guard.of_type(f"guard-account-{prompt}", "guard.RestorationCompleted")
    assert done["outcome"] == "withinSla" and done["ruleIds"] == ["CP4.RESTORE_48H"]
    orders = await guard.of_type(f"guard-account-{payer}", "guard.RestorationOrdered")
    assert len(orders) == 1 and orders[0]["payload"]["restoreBy"] == (paid_at + timedelta(hours=48)).isoformat()
    await guard.tick(paid_at + timedelta(hours=47, minutes=59))
    assert await guard.of_type(f"guard-account-{payer}", "guard.RestorationSlaMissed") == []
    await guard.tick(paid_at + timedelta(hours=48))
    missed = await guard.of_type(f"guard-account-{payer}", "guard.RestorationSlaMissed")
    assert len(missed) == 1 and missed[0]["ruleIds"] == ["CP4.RESTORE_48H"]
    assert missed[0]["businessTime"] == (paid_at + timedelta(hours=48)).isoformat()
    assert await guard.of_type(f"guard-account-{prompt}", "guard.RestorationSlaMissed") == []
    # Reported after the deadline: recorded as late, on top of the miss already raised.
    await guard.feed(restored(payer, paid_at + timedelta(hours=50)))
    (late,) = await guard.of_type(f"guard-account-{payer}", "guard.RestorationCompleted")
    assert late["outcome"] == "late" and late["reasonCodes"] == ["RESTORED_AFTER_48H"]

    suspended_at = request_time(debt_request)
    await guard.tick(suspended_at + timedelta(days=59, hours=23))
    assert await guard.of_type(f"guard-account-{debtor}", "guard.TerminationEligible") == []
    await guard.tick(suspended_at + timedelta(days=60))
    (eligible,) = await guard.of_type(f"guard-account-{debtor}", "guard.TerminationEligible")
    assert eligible["payload"]["automatic"] is False and eligible["outcome"] == "eligible"
    assert eligible["ruleIds"] == ["CP4.TERMINATION"]
    # Restored before 60 days: its termination check was cancelled.
    await guard.tick(suspended_at + timedelta(days=90))
    assert await guard.of_type(f"guard-account-{payer}", "guard.TerminationEligible") == []


# ---------------------------------------------------------------- CP5 planned works


async def test_CP5_PROVINCIAL_CROSS_PROVINCE_NOTICE_72H_LONG_OR_VIP_clearances(guard):
    start = at(2026, 5, 10, 2)
    early, decided = start - timedelta(days=6), start - timedelta(days=5)
    cases = {
        "W-PROV-OK": dict(approvals=("provincial",), notices=(early,)),
        "W-PROV-NO": dict(notices=(early,)),
        "W-CROSS-NO": dict(provinces=("Jiangsu", "Zhejiang"), approvals=("provincial",), notices=(early,)),
        "W-CROSS-OK": dict(provinces=("Jiangsu", "Zhejiang"), approvals=("groupHq",), notices=(early,)),
        "W-LONG-NO": dict(hours=30, approvals=("provincial", "groupHq")),
        "W-VIP-NO": dict(vip=True, approvals=("provincial",), notices=(early,)),
        "W-VIP-OK": dict(vip=True, approvals=("provincial", "groupHq", "regulator"), notices=(early,)),
    }
    for work_id, kw in cases.items():
        await guard.feed(work(work_id, decided, start, **kw))
    # Notice sent only 48 h before the start, decided a day before it.
    await guard.feed(work("W-NOTICE-NO", start - timedelta(days=1), start, approvals=("provincial",),
                          notices=(start - timedelta(hours=48),)))
    got = {d["payload"]["workId"]: d for d in await guard.stream("guard-works")}
    summary = {w: (d["outcome"], d["reasonCodes"], d["ruleIds"]) for w, d in got.items()}
    assert summary == {
        "W-PROV-OK": ("cleared", [], ["CP5.PROVINCIAL", "CP5.NOTICE_72H"]),
        "W-PROV-NO": ("blocked", ["MISSING_PROVINCIAL_APPROVAL"], ["CP5.PROVINCIAL", "CP5.NOTICE_72H"]),
        "W-CROSS-NO": ("blocked", ["MISSING_GROUP_HQ_APPROVAL"], ["CP5.CROSS_PROVINCE", "CP5.NOTICE_72H"]),
        "W-CROSS-OK": ("cleared", [], ["CP5.CROSS_PROVINCE", "CP5.NOTICE_72H"]),
        "W-LONG-NO": ("blocked", ["MISSING_REGULATOR_APPROVAL"], ["CP5.PROVINCIAL", "CP5.LONG_OR_VIP"]),
        "W-VIP-NO": ("blocked", ["MISSING_GROUP_HQ_APPROVAL", "MISSING_REGULATOR_APPROVAL"],
                     ["CP5.PROVINCIAL", "CP5.LONG_OR_VIP", "CP5.NOTICE_72H"]),
        "W-VIP-OK": ("cleared", [], ["CP5.PROVINCIAL", "CP5.LONG_OR_VIP", "CP5.NOTICE_72H"]),
        "W-NOTICE-NO": ("blocked", ["MISSING_72H_NOTICE"], ["CP5.PROVINCIAL", "CP5.NOTICE_72H"]),
    }


async def test_CP5_WINDOW_CDRS_and_CP5_OUTAGE_CREDIT_for_a_cleared_work_only(guard):
    account, other = uid("A"), uid("A")
    await standard_tariff(guard)
    start = at(2026, 5, 10, 2)
    notice = start - timedelta(days=6)
    await guard.feed(
        work("W-OK", start - timedelta(days=5), start, approvals=("provincial",), notices=(notice,),
             switches=("SW-W1",), areas=("0511",), accounts=(account, other)),
        work("W-BLOCKED", start - timedelta(days=5), start, notices=(notice,), switches=("SW-W2",), areas=("0512",),
             accounts=(account,)))
    await guard.feed(
        cdr(account, "SW-W1", 1, start + timedelta(hours=1), usage_id="U-IN-SWITCH"),
        cdr(account, "SW-X", 1, start + timedelta(hours=2), area="0511", usage_id="U-IN-AREA"),
        cdr(account, "SW-W1", 2, start + timedelta(hours=5), usage_id="U-AFTER"),
        cdr(account, "SW-W2", 1, start + timedelta(hours=1), usage_id="U-BLOCKED-WORK"))
    rated = {d["payload"]["usageId"]: d for d in of(await guard.account(account), "guard.CdrRated")}
    flagged = {u for u, d in rated.items() if d["outcome"] == "flaggedForVerification"}
    assert flagged == {"U-IN-SWITCH", "U-IN-AREA"}
    for usage in flagged:
        assert rated[usage]["payload"]["flags"] == ["IN_CUTOVER_WINDOW"] and rated[usage]["payload"]["workIds"] == ["W-OK"]
        assert "CP5.WINDOW_CDRS" in rated[usage]["ruleIds"]
    assert rated["U-AFTER"]["outcome"] == rated["U-BLOCKED-WORK"]["outcome"] == "charged"

    outage = (start, start + timedelta(hours=2, minutes=30))
    reported = start + timedelta(hours=6)
    await guard.feed(work("W-OK", reported, start, action="outageReported", outage=outage,
                          switches=("SW-W1",), accounts=(account, other, account)),
                     work("W-BLOCKED", reported, start, action="outageReported", outage=outage, accounts=(account,)),
                     work("W-NEVER-PLANNED", reported, start, action="outageReported", outage=outage, accounts=(account,)))
    works = await guard.stream("guard-works")
    credits = of(works, "guard.OutageCreditIssued")
    assert sorted((c["payload"]["accountId"], c["payload"]["creditedHours"], c["payload"]["creditMinor"]) for c in credits) == \
        sorted([(account, 3, 150), (other, 3, 150)])
    assert all(c["ruleIds"] == ["CP5.OUTAGE_CREDIT"] and c["payload"]["workId"] == "W-OK" for c in credits)
    refused = {d["payload"]["workId"]: d["reasonCodes"] for d in of(works, "guard.OutageCreditRefused")}
    assert refused == {"W-BLOCKED": ["WORK_NOT_CLEARED"], "W-NEVER-PLANNED": ["WORK_UNKNOWN"]}


# ---------------------------------------------------------------- disputes


async def march_account(guard) -> dict:
    """An account with a closed March bill: three charged CDRs (one in a cleared cutover
    window), one suppressed duplicate, one CP1 change."""
    account = uid("A")
    await standard_tariff(guard)
    start = at(2026, 3, 10, 2)
    await guard.feed(work(f"W-{account}", start - timedelta(days=5), start, approvals=("provincial",),
                          notices=(start - timedelta(days=6),), switches=(f"SW-C-{account}",), accounts=(account,)))
    await guard.feed(customer(account, "billDelivery", None, "email", at(2026, 3, 1), role="selfService"))
    sw = f"SW-D-{account}"
    await guard.feed(cdr(account, sw, 1, at(2026, 3, 5), usage_id=f"U1-{account}"),
                     cdr(account, sw, 2, at(2026, 3, 6), seconds=300, usage_id=f"U2-{account}", origin="O-2"),
                     cdr(account, sw, 2, at(2026, 3, 6), seconds=300, usage_id=f"U2C-{account}", origin="O-2"),
                     cdr(account, f"SW-C-{account}", 1, start + timedelta(hours=1), usage_id=f"U3-{account}"))
    await guard.feed(bill(account, f"B-{account}", "2026-03", 20 + 50 + 20))
    return {"account": account, "bill": f"B-{account}", "u1": f"U1-{account}", "u2": f"U2-{account}",
            "u2c": f"U2C-{account}", "u3": f"U3-{account}", "work": f"W-{account}"}


def open_dispute(m, ticket, when, items, amount, actor="agent-1"):
    return dispute(m["account"], ticket, "open", when, actor=actor, reason="I did not make this call",
                   billId=m["bill"], disputedItems=items, disputedAmount=fen(amount))


async def test_D_OPEN_owner_is_the_first_receiver_and_a_transfer_needs_acceptance(guard):
    m = await march_account(guard)
    a, when = m["account"], at(2026, 4, 5)
    steps = [
        open_dispute(m, "K-1", when, [m["u1"]], 20),
        dispute(a, "K-1", "transfer", when, actor="agent-9", toOwnerId="agent-2"),
        dispute(a, "K-1", "transfer", when, actor="agent-1", toOwnerId="agent-2", reason="billing specialist"),
        dispute(a, "K-1", "acceptTransfer", when, actor="agent-3"),
        dispute(a, "K-1", "acceptTransfer", when + timedelta(hours=1), actor="agent-2"),
        dispute(a, "K-1", "transfer", when, actor="agent-1", toOwnerId="agent-4"),
        open_dispute(m, "K-1", when, [m["u1"]], 20),
    ]
    for step in steps:
        await guard.feed(step)
    log = [d for d in await guard.account(a) if d["decisionType"].startswith("guard.Dispute")]
    assert [(d["decisionType"], d["outcome"], d["reasonCodes"]) for d in log] == [
        ("guard.DisputeOpened", "acknowledged", []),
        ("guard.DisputeActionRejected", "rejected", ["ONLY_OWNER_MAY_TRANSFER"]),
        ("guard.DisputeTransferProposed", "pendingAcceptance", []),
        ("guard.DisputeActionRejected", "rejected", ["NO_TRANSFER_TO_THIS_ACTOR"]),
        ("guard.DisputeTransferAccepted", "transferred", []),
        ("guard.DisputeActionRejected", "rejected", ["ONLY_OWNER_MAY_TRANSFER"]),  # agent-1 is no longer owner
        ("guard.DisputeActionRejected", "rejected", ["TICKET_EXISTS"]),
    ]
    opened = log[0]["payload"]
    assert {k: opened[k] for k in ("ticketType", "accountId", "billId", "disputedItems", "disputedAmountMinor",
                                   "ownerId", "channel", "reason", "cycle")} == {
        "ticketType": "Bill Dispute", "accountId": a, "billId": m["bill"], "disputedItems": [m["u1"]],
        "disputedAmountMinor": 20, "ownerId": "agent-1", "channel": "hotline", "reason": "I did not make this call",
        "cycle": "2026-03"}
    assert (log[4]["payload"]["fromOwnerId"], log[4]["payload"]["toOwnerId"]) == ("agent-1", "agent-2")
    assert log[4]["businessTime"] == (when + timedelta(hours=1)).isoformat()
    assert all("D.OPEN" in d["ruleIds"] for d in log)


async def test_D_REPLY_15D_unanswered_dispute_goes_overdue_by_the_timer(guard):
    m = await march_account(guard)
    a, opened = m["account"], at(2026, 4, 5)
    await guard.feed(open_dispute(m, "K-SILENT", opened, [m["u1"]], 20),
                     open_dispute(m, "K-ANSWERED", opened, [m["u1"]], 20))
    await guard.feed(dispute(a, "K-ANSWERED", "reply", opened + timedelta(days=3), replyText="call verified"))
    stream = f"guard-account-{a}"
    await guard.tick(opened + timedelta(days=15) - timedelta(seconds=1))
    assert await guard.of_type(stream, "guard.DisputeReplyOverdue") == []
    await guard.tick(opened + timedelta(days=15))
    (overdue,) = await guard.of_type(stream, "guard.DisputeReplyOverdue")
    assert overdue["payload"]["ticketId"] == "K-SILENT" and overdue["ruleIds"] == ["D.REPLY_15D"]
    assert overdue["businessTime"] == (opened + timedelta(days=15)).isoformat()
    assert overdue["reasonCodes"] == ["NO_REPLY_WITHIN_15_DAYS"]
    await guard.feed(dispute(a, "K-SILENT", "reply", opened + timedelta(days=16), replyText="sorry, verified"))
    replies = {d["payload"]["ticketId"]: d for d in await guard.of_type(stream, "guard.DisputeReplied")}
    assert replies["K-ANSWERED"]["outcome"] == "answered"
    assert (replies["K-SILENT"]["outcome"], replies["K-SILENT"]["reasonCodes"]) == ("answeredLate", ["REPLY_AFTER_DEADLINE"])
    await guard.tick(opened + timedelta(days=40))
    assert len(await guard.of_type(stream, "guard.DisputeReplyOverdue")) == 1


async def test_D_EVIDENCE_pack_holds_itemized_cdrs_tariff_versions_and_checkpoint_decisions(guard):
    m = await march_account(guard)
    await guard.feed(open_dispute(m, "K-EV", at(2026, 4, 5), [m["u1"]], 20))
    log = await guard.account(m["account"])
    (opened,) = of(log, "guard.DisputeOpened")
    evidence = opened["payload"]["evidence"]
    assert "D.EVIDENCE" in opened["ruleIds"] and evidence["cycle"] == "2026-03"
    rated = of(log, "guard.CdrRated")
    assert [(i["usageId"], i["tariffId"], i["tariffVersion"], i["amountMinor"], i["decisionId"]) for i in evidence["items"]] == [
        (d["payload"]["usageId"], "T-STD", 1, d["payload"]["amountMinor"], d["decisionId"]) for d in rated]
    assert [i["usageId"] for i in evidence["items"]] == [m["u1"], m["u2"], m["u3"]]
    (accepted,) = await guard.stream("guard-tariffs")
    assert evidence["tariffVersions"] == [{"tariffId": "T-STD", "version": 1,
                                           "effectiveFrom": accepted["payload"]["tariff"]["effectiveFrom"],
                                           "publishedAt": accepted["payload"]["tariff"]["publishedAt"]}]
    expected_checkpoints = {d["decisionId"] for d in log if d["decisionType"] in
                            ("guard.DuplicateCdrSuppressed", "guard.CustomerDataChanged")}
    expected_checkpoints.add(next(d["decisionId"] for d in rated if d["payload"]["usageId"] == m["u3"]))
    assert {c["decisionId"] for c in evidence["checkpointDecisions"]} == expected_checkpoints
    assert [w["workId"] for w in evidence["cutoverWindows"]] == [m["work"]]
    text = orjson.dumps(evidence).decode()
    assert CALLING not in text and CALLED not in text and "138****5678" in text  # A.PRIVACY: staff view


async def test_D_RESOLVE_upheld_partial_rejected_then_closed_with_credit_notes(guard):
    m = await march_account(guard)
    a, when = m["account"], at(2026, 4, 5)
    await guard.feed(*(open_dispute(m, t, when, [m["u1"]], 20) for t in ("K-UP", "K-PART", "K-REJ")))
    later = when + timedelta(days=2)
    steps = [
        dispute(a, "K-UP", "close", later),  # not resolved yet
        dispute(a, "K-UP", "resolve", later, resolution="upheld", reason="no such call"),
        dispute(a, "K-PART", "resolve", later, resolution="partiallyUpheld", creditAmount=fen(25), reason="x"),
        dispute(a, "K-PART", "resolve", later, resolution="partiallyUpheld", creditAmount=fen(7), reason="goodwill"),
        dispute(a, "K-REJ", "resolve", later, resolution="rejected", reason="call verified on switch"),
        dispute(a, "K-REJ", "resolve", later, resolution="upheld", reason="second try"),
    ]
    for step in steps:
        await guard.feed(step)
    for ticket in ("K-UP", "K-PART", "K-REJ"):
        await guard.feed(dispute(a, ticket, "close", later + timedelta(days=1)))
    log = await guard.account(a)
    resolved = {d["payload"]["ticketId"]: d for d in of(log, "guard.DisputeResolved")}
    assert {t: (d["outcome"], d["payload"]["creditMinor"]) for t, d in resolved.items()} == {
        "K-UP": ("upheld", 20), "K-PART": ("partiallyUpheld", 7), "K-REJ": ("rejected", 0)}
    assert resolved["K-REJ"]["reasonCodes"] == ["CUSTOMER_CLAIM_REJECTED"]
    assert resolved["K-REJ"]["payload"]["reason"] == "call verified on switch"
    notes = {d["payload"]["ticketId"]: d["payload"] for d in of(log, "guard.CreditNoteIssued")}
    assert {t: (n["amountMinor"], n["billId"], n["cycle"], n["how"]) for t, n in notes.items()} == {
        "K-UP": (20, m["bill"], "2026-03", "manual"), "K-PART": (7, m["bill"], "2026-03", "manual")}
    refused = [d["reasonCodes"] for d in of(log, "guard.DisputeActionRejected")]
    assert refused == [["NOT_RESOLVED"], ["PARTIAL_CREDIT_OUT_OF_RANGE"], ["DISPUTE_NOT_OPEN"]]
    closed = of(log, "guard.DisputeClosed")
    assert sorted(d["payload"]["ticketId"] for d in closed) == ["K-PART", "K-REJ", "K-UP"]
    assert all("D.RESOLVE" in d["ruleIds"] for d in list(resolved.values()) + closed)


async def test_D_ITEMIZED_free_itemized_list_from_the_stored_decisions(guard):
    m = await march_account(guard)
    await guard.feed(open_dispute(m, "K-DUP", at(2026, 4, 5), [m["u2c"]], 50))  # auto-credited duplicate
    log = await guard.account(m["account"])
    staff = itemized_bill(log, m["account"], "2026-03")
    # Independently: 2 min + 5 min + 2 min at 10 fen/min, the duplicate never a line, its credit 50.
    assert [(l["usageId"], l["amountMinor"], l["tariffVersion"]) for l in staff["lines"]] == [
        (m["u1"], 20, 1), (m["u2"], 50, 1), (m["u3"], 20, 1)]
    assert (staff["chargesMinor"], staff["creditsMinor"], staff["totalMinor"]) == (90, 50, 40)
    assert {l["callingNumber"] for l in staff["lines"]} == {"138****5678"}
    owner = itemized_bill(log, m["account"], "2026-03", owner_view=True)
    assert {l["callingNumber"] for l in owner["lines"]} == {CALLING}
    assert "D.ITEMIZED" in staff["ruleIds"]
    assert itemized_bill(log, m["account"], "2026-02")["lines"] == []
