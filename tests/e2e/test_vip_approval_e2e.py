"""CP4.IMPORTANT end to end (issue 15): the billing_guard worker (a subprocess) on a real broker
and Postgres holds a gold customer's suspension for the account manager; an approval approves,
a refusal denies, a wrong role is rejected with its reason, and silence past the policy's 48 h
(on the business clock) is a refusal that escalates. `wuguan approvals` lists what waits."""
from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import orjson
import pytest

from services.common.db import connect
from services.common.localstack.publish import publish

from ..integration.guard_inputs import SHANGHAI, dunning_decision, ev, payment, uid
from ..suspension_requests import suspension_request

pytestmark = pytest.mark.e2e
DUE = datetime(2026, 6, 15, 23, 59, tzinfo=SHANGHAI)
MANAGER = "AM-NJ-017"


def gold_request(account: str) -> dict:
    request = suspension_request(account, DUE, tier="gold", manager=MANAGER)
    assert request["payload"]["customerTier"] == "gold" and request["payload"]["accountManagerId"] == MANAGER
    return request


def approval(account: str, request_id: str, verdict: str, when: datetime, role="accountManager", approver=MANAGER,
             decided: datetime | None = None):
    topic, value = ev("billing.approval.v1", {
        "approvalId": uid("APR"), "requestId": request_id, "accountId": account, "approverId": approver,
        "approverRole": role, "verdict": verdict, "reason": "spoke to the customer", "decidedAt": decided or when}, when)
    return topic, account.encode(), value


def keyed(account: str, message):
    return message[0], account.encode(), message[1]


def wuguan(*args: str, database_url: str) -> str:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "services", *args], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _decisions(conn, kind: str) -> list[dict]:
    rows = await conn.fetch("SELECT payload FROM events WHERE event_type = $1 ORDER BY global_position", kind)
    return [orjson.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]


async def _until(conn, kind: str, count: int, workers) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(found := await _decisions(conn, kind)) < count:
        assert loop.time() < deadline, f"{kind}: {len(found)} of {count}\n{workers.log('billing_guard')[-3000:]}"
        await asyncio.sleep(0.2)
    return found


async def test_CP4_IMPORTANT_approve_refuse_wrong_role_and_timeout_for_gold_customers(workers):
    workers.timer_clock, workers.timer_interval_ms = "business", 50
    workers.start("billing_guard")
    await workers.wait_healthy("billing_guard")
    approved, refused, wrong_role, silent = (uid("GOLD") for _ in range(4))
    requests = {a: gold_request(a) for a in (approved, refused, wrong_role, silent)}
    await publish(workers.bootstrap, [keyed(a, dunning_decision(r)) for a, r in requests.items()])
    conn = await connect(workers.database_url)
    try:
        waiting = await _until(conn, "guard.SuspensionAwaitingApproval", 4, workers)
        assert all(w["ruleIds"] == ["CP4.IMPORTANT"] and w["payload"]["customerTier"] == "gold" for w in waiting)
        assert await _decisions(conn, "guard.SuspensionApproved") == []
        queue = list(csv.DictReader(io.StringIO(wuguan("approvals", "--csv", database_url=workers.database_url))))
        assert sorted(row["accountId"] for row in queue if row["manager"] == MANAGER) == sorted(requests)

        asked = datetime.fromisoformat(waiting[0]["businessTime"])
        request_id = {a: r["decisionId"] for a, r in requests.items()}
        await publish(workers.bootstrap, [
            approval(approved, request_id[approved], "approve", asked + timedelta(hours=2)),
            approval(refused, request_id[refused], "refuse", asked + timedelta(hours=3)),
            approval(wrong_role, request_id[wrong_role], "approve", asked + timedelta(hours=4), role="counterClerk"),
            approval(wrong_role, request_id[approved], "approve", asked + timedelta(hours=5)),  # another request
            # M5: an account manager who is not this customer's may not answer.
            approval(silent, request_id[silent], "approve", asked + timedelta(hours=6), approver="AM-SH-999"),
        ])
        rejected = await _until(conn, "guard.SuspensionApprovalRejected", 3, workers)
        (yes,) = await _until(conn, "guard.SuspensionApproved", 1, workers)
        (no,) = await _until(conn, "guard.SuspensionDenied", 1, workers)
        assert (yes["payload"]["accountId"], yes["payload"]["approverRole"]) == (approved, "accountManager")
        assert (no["payload"]["accountId"], no["reasonCodes"]) == (refused, ["ACCOUNT_MANAGER_REFUSED"])
        assert sorted(r["reasonCodes"][0] for r in rejected) == ["APPROVER_NOT_ACCOUNT_MANAGER", "APPROVER_ROLE_NOT_ALLOWED",
                                                                 "NO_SUCH_REQUEST_AWAITING_APPROVAL"]
        queue = list(csv.DictReader(io.StringIO(wuguan("approvals", "--csv", database_url=workers.database_url))))
        assert sorted(row["accountId"] for row in queue) == sorted([wrong_role, silent])

        # 48 h pass on the business clock (any later input moves it): both still waiting time out.
        clock = uid("CLOCK")
        await publish(workers.bootstrap, [keyed(clock, payment(clock, uid("P"), asked + timedelta(hours=49), 1))])
        denied = await _until(conn, "guard.SuspensionDenied", 3, workers)
        escalated = await _until(conn, "guard.SuspensionApprovalEscalated", 2, workers)
        timed_out = {d["payload"]["accountId"] for d in denied if d["reasonCodes"] == ["APPROVAL_TIMED_OUT"]}
        assert timed_out == {wrong_role, silent}
        assert {e["payload"]["accountId"] for e in escalated} == {wrong_role, silent}
        assert all(e["payload"]["escalateTo"] == "accountManagerSupervisor" and "CP4.IMPORTANT" in e["ruleIds"]
                   for e in escalated)
        assert wuguan("approvals", "--csv", database_url=workers.database_url).strip().count("\n") == 0
        # H1: an answer decided after approvalDueAt is late, and an in-time one delivered after the
        # timeout was decided is told so; neither changes the denial.
        await publish(workers.bootstrap, [
            approval(silent, request_id[silent], "approve", asked + timedelta(hours=50), decided=asked + timedelta(hours=49)),
            approval(wrong_role, request_id[wrong_role], "approve", asked + timedelta(hours=50),
                     decided=asked + timedelta(hours=30))])
        rejected = await _until(conn, "guard.SuspensionApprovalRejected", 5, workers)
        assert sorted(r["reasonCodes"][0] for r in rejected[3:]) == ["APPROVAL_AFTER_TIMEOUT",
                                                                     "APPROVAL_TIMEOUT_ALREADY_DECIDED"]
        assert len(await _decisions(conn, "guard.SuspensionApproved")) == 1
    finally:
        await conn.close()
