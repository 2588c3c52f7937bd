"""The self-check (服务标准自查) over a simulated month, end to end (issue 15): the guard, dunning
and cards workers (subprocesses) on a real broker and Postgres decide a month with three planted
breaches (a dispute answered on day 16, a line restored 49 h after payment, a cutover noticed 71 h
ahead) and clean cases of every other standard. `wuguan self-check`, the finance API route and
the /self-check page in headless Chromium report each breach with its decision id, the clean
rows read 达标 (the huge-fee row: not measured, with its reason), and a projection rebuild
changes no figure.

The month simulated is the current one: C.REPLACE_NOW is measured from the complaint's time to
the stored decision (wall clock), so its complaint must be live."""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from services.common.db import connect
from services.common.localstack.processes import stop_processes
from services.common.localstack.publish import publish
from services.finance import tokens
from services.finance.self_check_policy import DEFAULT

from ..integration.guard_inputs import (SHANGHAI, cdr, dispute, dunning_decision, ev, fen, payment, rates, restored,
                                        tariff, uid, work)
from ..suspension_requests import suspension_request
from .api_process import SECRET, spawn_api
from .test_cards_e2e import complaint, inventory, msg
from .test_finance_dashboard import http_json, run_chromium

pytestmark = pytest.mark.e2e
MONTH = datetime.now(SHANGHAI).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
PERIOD = MONTH.strftime("%Y-%m")


def day(n: int, hour: int = 10) -> datetime:
    """Day n of the month (1-based), local time."""
    return MONTH + timedelta(days=n - 1, hours=hour)


def keyed(key: str, message):
    return message[0], key.encode(), message[1]


def guard_month(ids: dict) -> list:
    """Tariffs, a huge fee, two disputes and two cutovers, each message keyed as the contract says."""
    out = [keyed("T-STD", tariff("T-STD", 1, MONTH - timedelta(days=40), 10, MONTH - timedelta(days=50)))]
    # CP2: a coarser increment is a disguised increase; without an approval it is rejected.
    out.append(keyed("T-STD", tariff("T-STD", 2, day(25, 0), 10, day(3), rates=rates(10, inc=120), replacesVersion=1)))
    out.append(keyed("T-STD", tariff("T-STD", 3, day(26, 0), 12, day(4), replacesVersion=1,
                                     approvalRef="APP-2026-11", filingRef="BA-2026-11")))
    huge = ids["huge"]
    out.append(keyed(huge, cdr(huge, "SW-H", 1, MONTH - timedelta(days=20), seconds=600)))
    out.append(keyed(huge, cdr(huge, "SW-H", 2, day(2), seconds=70 * 60)))
    for account, ticket, opened, replied in ((ids["d_ok"], "K-OK", day(2), day(5)), (ids["d_late"], "K-LATE", day(1), day(17))):
        out.append(keyed(account, dispute(account, ticket, "open", opened, billId=f"B-{account}", disputedItems=["L-1"],
                                          disputedAmount=fen(500))))
        out.append(keyed(account, dispute(account, ticket, "reply", replied, replyText="we checked the calls")))
    for work_id, start, lead in (("W-OK", day(12, 1), 80), ("W-SHORT", day(13, 1), 71)):
        out.append(keyed(work_id, work(work_id, day(10, 9), start, hours=4, approvals=("provincial",),
                                       notices=(start - timedelta(hours=lead),), switches=("SW-X",), accounts=("A-X",))))
    return out


async def _wait_for(conn, checks: dict, workers) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while True:
        counts = {k: await conn.fetchval("SELECT count(*) FROM events WHERE event_type = $1", k) for k in checks}
        if all(counts[k] >= n for k, n in checks.items()):
            return
        assert loop.time() < deadline, f"{counts}\n{workers.log('billing_guard')[-2000:]}"
        await asyncio.sleep(0.2)


def self_check_policy(folder) -> str:
    """The bundled self-check policy with C.REPLACE_NOW's limit at 5 s: the test machine is shared,
    and the limit shown must be the one configured (the 1 s standard is measured by make bench)."""
    document = json.loads(DEFAULT.read_text())
    document["rows"]["cardReplacement"]["p99LimitSeconds"] = 5.0
    folder.mkdir()
    (folder / "self_check.json").write_text(json.dumps(document, ensure_ascii=False))
    return str(folder)


def wuguan(*args: str, database_url: str, policy_dir: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "WUGUAN_POLICY_DIR": policy_dir}
    done = subprocess.run([sys.executable, "-m", "services", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def _simulate(workers, ids: dict) -> None:
    conn = await connect(workers.database_url)
    try:
        # Cards: stock at an outlet, a card sold, then a live complaint (C.REPLACE_NOW).
        now = datetime.now(SHANGHAI)
        await workers_publish(workers, [msg("cards.inventory.v1", {
            "action": "batchIssued", "batchId": "B-O1", "outletId": "O-1", "cardSerials": ["C-1", "C-2", "C-3"],
            "faceValue": {"amountMinor": 5000, "currency": "CNY"}, "expiresAt": now + timedelta(days=700)}, now - timedelta(hours=2))])
        await _wait_for(conn, {"cards.CardIssued": 3}, workers)
        await workers_publish(workers, [inventory("activated", "C-1", now - timedelta(hours=1), outletId="O-1")])
        await _wait_for(conn, {"cards.CardActivated": 1}, workers)
        await workers_publish(workers, [complaint("C-1", "O-1", "CMP-1", datetime.now(SHANGHAI))])

        # Guard: the month's inputs; restorations after suspensions the real dunning domain asked for.
        # A tariff is published before the usage it rates (the ordering contract, schemas/README.md).
        month = guard_month(ids)
        await workers_publish(workers, month[:3])
        await _wait_for(conn, {"guard.TariffVersionAccepted": 2, "guard.TariffVersionRejected": 1}, workers)
        await workers_publish(workers, month[3:])
        owed_by = {}
        for account in (ids["r_ok"], ids["r_late"]):
            request = suspension_request(account, MONTH - timedelta(days=31))
            owed_by[account] = request["payload"]["overdueMinor"] + request["payload"]["lateFeeToDateMinor"]
            await workers_publish(workers, [keyed(account, dunning_decision(request))])
        await _wait_for(conn, {"guard.SuspensionApproved": 2}, workers)
        paid = payment_time()
        for account, hours in ((ids["r_ok"], 20), (ids["r_late"], 49)):
            await workers_publish(workers, [keyed(account, payment(account, uid("P"), paid, owed_by[account]))])
            await _wait_for(conn, {"guard.RestorationOrdered": 1 if hours == 20 else 2}, workers)
            await workers_publish(workers, [keyed(account, restored(account, paid + timedelta(hours=hours)))])
        # Dunning: a first arrears (DN.FIRST_LETTER, DN.QUIET_HOURS) for an ordinary customer, due as
        # the month starts: its first reminder is scheduled in the month (M4: a row with nothing in it
        # reads "not measured", so the clean rows need something to measure).
        await workers_publish(workers, [keyed(ids["arrears"], arrears_bill(ids["arrears"]))])
        await _wait_for(conn, {"guard.RestorationCompleted": 2, "guard.DisputeReplied": 2, "guard.PlannedWorkBlocked": 1,
                               "guard.PlannedWorkCleared": 1, "guard.HugeFeeAlert": 1, "guard.TariffVersionRejected": 1,
                               "guard.TariffVersionAccepted": 2, "cards.CardReplaced": 1, "dunning.BillTracked": 1,
                               "dunning.ReminderScheduled": 1, "dunning.ReminderDue": int(first_reminder_due())},
                        workers)
    finally:
        await conn.close()


def arrears_bill(account: str):
    """Last month's bill, due at the first instant of this month; credit level C: one day's grace,
    so the first reminder (a manual contact, never voice) is due on day 2 at 08:00."""
    return ev("billing.bill.v1", {
        "billId": f"B-{account}", "billNo": f"B-{account}", "accountId": account,
        "billingPeriod": {"startDateTime": (MONTH - timedelta(days=1)).replace(day=1), "endDateTime": MONTH},
        "billDate": MONTH - timedelta(days=10), "paymentDueDate": MONTH,
        "amountDue": {"amountMinor": 3000, "currency": "CNY"}, "state": "sent",
        "customer": {"creditLevel": "C", "customerTier": "standard", "important": False}}, MONTH - timedelta(days=10))


def payment_time() -> datetime:
    """When the suspended lines are paid for: within the month, and late enough that their 48 h
    restoration deadline (CP4.RESTORE_48H) is still ahead of the wall clock. The deadline's timer
    fires by the business clock, which follows the wall clock: a payment planted more than 48 h
    back would have its line's deadline missed the moment its order is decided, before the
    restoration published after it arrives (from the 8th of a month on, with a fixed day 6)."""
    recent = (datetime.now(SHANGHAI) - timedelta(hours=46)).replace(minute=0, second=0, microsecond=0)
    return max(MONTH + timedelta(hours=1), recent)


def first_reminder_due() -> bool:
    """The business clock never runs ahead of the wall clock: on day 1 the reminder is not due yet."""
    return datetime.now(SHANGHAI) > day(2, 8) + timedelta(minutes=1)


async def workers_publish(workers, messages) -> None:
    await publish(workers.bootstrap, messages)


async def _ids_of(database_url: str, kind: str, field: str, value: str) -> list[str]:
    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT payload->>'decisionId' AS id FROM events WHERE event_type = $1"
                                " AND payload->'payload'->>$2 = $3 ORDER BY global_position", kind, field, value)
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def _api(database_url: str, tmp_path, policy_dir: str):
    process, base, log = spawn_api(database_url, tmp_path / "api.log", WUGUAN_POLICY_DIR=policy_dir)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
        try:
            await asyncio.to_thread(http_json, f"{base}/healthz")
            return process, base, log
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()[-3000:]
            await asyncio.sleep(0.2)


async def test_self_check_over_a_simulated_month_reports_each_planted_breach_with_its_decision(workers, tmp_path):
    policy = self_check_policy(tmp_path / "policy")
    workers.timer_clock = "business"
    for service in ("billing_guard", "dunning", "cards"):
        workers.start(service)
    for service in ("billing_guard", "dunning", "cards"):
        await workers.wait_healthy(service)
    ids = {name: uid(name.upper().replace("_", "-")) for name in ("huge", "d_ok", "d_late", "r_ok", "r_late", "arrears")}
    await _simulate(workers, ids)
    db = workers.database_url

    report = json.loads(wuguan("self-check", "--period", PERIOD, "--json", database_url=db, policy_dir=policy))
    rows = {r["key"]: r for r in report["rows"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "disputeReply": "不达标", "restoration": "不达标", "cutoverNotice": "不达标", "cardReplacement": "达标",
        "firstArrearsVoice": "达标", "quietHours": "达标" if first_reminder_due() else "无数据 / not measured",
        # H5: no decision records that a huge-fee customer was told: the row says it cannot measure.
        "hugeFee": "无数据 / not measured", "tariffIncrease": "达标"}
    (late_reply,) = await _ids_of(db, "guard.DisputeReplied", "ticketId", "K-LATE")
    (late_restore,) = await _ids_of(db, "guard.RestorationCompleted", "accountId", ids["r_late"])
    (short_notice,) = await _ids_of(db, "guard.PlannedWorkBlocked", "workId", "W-SHORT")
    (breach,) = rows["disputeReply"]["breaches"]
    assert breach["ticketId"] == "K-LATE" and breach["days"] == 16.0 and late_reply in breach["decisionIds"]
    (breach,) = rows["restoration"]["breaches"]
    assert breach["hours"] == 49.0 and late_restore in breach["decisionIds"]
    assert rows["cutoverNotice"]["breaches"] == [{"workId": "W-SHORT", "noticeLeadHours": 71.0, "decisionIds": [short_notice]}]
    assert rows["disputeReply"]["measured"]["count"] == 2 and rows["restoration"]["measured"]["p50"] == 20.0
    assert rows["cutoverNotice"]["measured"] == {"works": 2, "shortNotices": 1, "minLeadHours": 71.0}
    assert rows["cardReplacement"]["measured"]["measured"] == 1 and rows["cardReplacement"]["measured"]["p99Seconds"] <= 5
    assert rows["cardReplacement"]["limit"] == "p99 ≤ 5 s"  # from the configured policy
    assert (rows["hugeFee"]["measured"]["alerts"], rows["hugeFee"]["measured"]["askedImmediately"]) == (1, 1)
    assert rows["hugeFee"]["measured"]["notified"] is None and "not measurable" in rows["hugeFee"]["note"]
    assert rows["tariffIncrease"]["measured"]["rejected"] == 1
    assert [a["approvalRef"] for a in rows["tariffIncrease"]["measured"]["approved"]] == ["APP-2026-11"]
    assert rows["restoration"]["department"] == "网络运行维护事业部"
    text = wuguan("self-check", "--period", PERIOD, database_url=db, policy_dir=policy)
    assert late_reply in text and "不达标" in text
    assert short_notice in wuguan("self-check", "--period", PERIOD, "--csv", database_url=db, policy_dir=policy)
    page = wuguan("self-check", "--period", PERIOD, "--html", database_url=db, policy_dir=policy)
    assert page.startswith("<!doctype html>") and late_restore in page and page.count("不达标") == 4  # title + 3 rows

    process, base, log = await _api(db, tmp_path, policy)
    try:
        token = tokens.mint("e2e", "finance", 600, SECRET, time.time())
        url = f"{base}/api/self-check?period={PERIOD}"
        assert await asyncio.to_thread(http_json, url, token) == report
        wuguan("projections", "rebuild", database_url=db, policy_dir=policy)
        assert await asyncio.to_thread(http_json, url, token) == report

        dom = await asyncio.to_thread(run_chromium, f"{base}/self-check?period={PERIOD}#token={token}",
                                      tmp_path / "profile", "--dump-dom", capture=True)
        shown = dict(re.findall(r'data-status="([^"]+)"[^>]*>([^<]*)<', dom))
        assert shown == {k: r["status"] for k, r in rows.items()}
        breaches = dict(re.findall(r'data-breaches="([^"]+)"[^>]*>([^<]*)<', dom))
        assert late_reply in breaches["disputeReply"] and late_restore in breaches["restoration"]
        assert breaches["cutoverNotice"] == short_notice and breaches["hugeFee"] == ""
        assert token not in dom
        board = await asyncio.to_thread(run_chromium, f"{base}/", tmp_path / "profile-board", "--dump-dom", capture=True)
        assert 'href="/self-check"' in board
    finally:
        stop_processes([process])
        log.close()
