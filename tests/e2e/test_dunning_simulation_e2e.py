"""90 days of dunning through the real worker, broker and Postgres, fed day by day on the
business clock: the outcome must match an independent model of the workload (issue 4)."""
from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from datetime import datetime

import orjson
import pytest

from services.common.db import connect
from services.common.localstack.publish import publish

from ..dunning_simulation import SHANGHAI, dispute_event, simulate
from harness.dunning import guard_decision

pytestmark = pytest.mark.e2e
ACCOUNTS = int(os.environ.get("WUGUAN_SIM_ACCOUNTS", "300"))  # `make simulate` runs 10,000


@pytest.fixture
def workers_on_business_clock(workers):
    workers.timer_clock = "business"
    workers.timer_interval_ms = 20  # each simulated day waits for its timers
    return workers


async def _settled(conn, published: int) -> bool:
    consumed = await conn.fetchval(
        "SELECT count(*) FROM processed_inputs WHERE consumer = 'dunning' AND topic NOT LIKE 'wuguan.%'"
    )
    due_unfired = await conn.fetchval(
        "SELECT count(*) FROM pending_timers WHERE service = 'dunning'"
        " AND due_at <= (SELECT watermark FROM business_clocks WHERE service = 'dunning')"
    )
    return consumed >= published and due_unfired == 0


async def test_90_days_of_mixed_payers_through_the_worker(workers_on_business_clock):
    workers = workers_on_business_clock
    workers.start("dunning")
    await workers.wait_healthy("dunning")
    sim = simulate(ACCOUNTS, seed=11)
    by_day = defaultdict(list)
    for when, topic, key, value in sim.messages:
        by_day[when.astimezone(SHANGHAI).date()].append((topic, key, value))
    for account, bill in sim.bills():
        if bill.disputed_at:
            decision = guard_decision(account.account_id, "guard.DisputeOpened", bill.disputed_at,
                                      dispute_event(account.account_id, bill), bill.bill_id).payload
            by_day[bill.disputed_at.astimezone(SHANGHAI).date()].append(
                ("guard.decisions.v1", account.account_id.encode(), orjson.dumps(decision)))
    last_input = max(when for when, *_ in sim.messages)

    conn = await connect(workers.database_url)
    try:
        published = 0
        loop = asyncio.get_running_loop()
        for day in sorted(by_day):
            await publish(workers.bootstrap, by_day[day])
            published += len(by_day[day])
            deadline = loop.time() + 30 + ACCOUNTS / 100
            while not await _settled(conn, published):
                assert loop.time() < deadline, f"day {day} not settled: {workers.log('dunning')[-2000:]}"
                await asyncio.sleep(0.03)
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'dunning' ORDER BY global_position")
    finally:
        await conn.close()
    log = [r["payload"] for r in rows]

    def of(kind):
        return [d for d in log if d["decisionType"] == kind]

    # DN.OCCURRENCE: exactly the bills owed after their due date, with the right offence count
    withdrawn = {d["payload"]["occurrenceId"] for d in of("dunning.OccurrenceWithdrawn")}
    opened = {(d["payload"]["accountId"], d["payload"]["billId"]): d["payload"]["offenceCount"]
              for d in of("dunning.OccurrenceOpened") if d["payload"]["occurrenceId"] not in withdrawn}
    expected = {key: count for key, count in sim.expected_occurrences().items()
                if next(b for a, b in sim.bills() if b.bill_id == key[1]).due < last_input}
    assert opened == expected

    # DN.FIRST_LETTER and DN.QUIET_HOURS on every reminder delivered
    due = of("dunning.ReminderDue")
    assert due, "no reminder was delivered"
    for reminder in due:
        local = datetime.fromisoformat(reminder["businessTime"]).astimezone(SHANGHAI)
        assert 8 <= local.hour < 20
        if reminder["payload"]["offenceCount"] == 1:
            assert reminder["payload"]["channel"] in ("letter", "manual", "accountManager")
    assert any(r["payload"]["channel"] == "voice" for r in due)

    # DN.LATE_FEE against the independent day-by-day calculation
    closed_at = {(d["payload"]["accountId"], d["payload"]["billId"]): datetime.fromisoformat(d["businessTime"])
                 for d in of("dunning.OccurrenceClosed")}
    fees = defaultdict(int)
    for fee in of("dunning.LateFeeCharged"):
        fees[(fee["payload"]["accountId"], fee["payload"]["billId"])] += fee["payload"]["feeMinor"]
    assert fees
    for key, total in fees.items():
        assert total == sim.expected_late_fee(*key, closed_at[key]), key

    # DN.ESCALATE only after 30 days, never for an amount wholly on hold
    for request in of("dunning.SuspensionRequested"):
        assert request["payload"]["daysOverdue"] >= 30 and request["payload"]["overdueMinor"] > 0
