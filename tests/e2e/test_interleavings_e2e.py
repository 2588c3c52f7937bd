"""CP3.LATE / CP3.HUGE_FEE by event time, end to end (issue 15): the billing_guard and dunning
workers (subprocesses) on a real broker and Postgres, fed the same inputs in two cross-topic
interleavings (each partition's order kept) on two fresh brokers and databases, store the same
decisions; the reported late 1,000-fen CDR no longer makes a 5,000-fen month look like 5.00x."""
from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import timedelta

import orjson
import pytest

from services.common.db import connect
from services.common.localstack.publish import publish

from ..interleavings import interleave, late_cdr_case, month_start
from ..integration.guard_inputs import bill, cdr, tariff
from .conftest import RestartableBroker, workers_on

pytestmark = pytest.mark.e2e
HUGE, OFFLINE = "ACC-LATE", "ACC-OFFLINE"


def inputs() -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) in each topic's own order. Event ids are fixed, so two runs' decisions
    (whose ids derive from their inputs') can be compared whole."""
    rng, messages, seq, last_received = random.Random(15), [], {}, {}
    specs = late_cdr_case(HUGE)
    # A second account whose switch sends every fourth CDR a week late (offline collection).
    calls = sorted(month_start(2026, 1) + timedelta(hours=rng.randint(0, 80 * 24)) for _ in range(24))
    order = [c for n, c in enumerate(calls) if n % 4] + [c for n, c in enumerate(calls) if not n % 4]
    specs += [("cdr", OFFLINE, start, rng.randint(30, 900)) for start in order]
    specs += [("bill", OFFLINE, cycle, 3000) for cycle in ("2026-01", "2026-02")]
    for n, spec in enumerate(specs):
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"issue-15/{n}")
        if spec[0] == "cdr":
            _, account, start, seconds = spec
            seq[account] = seq.get(account, 0) + 1
            # Mediation sends an account's CDRs in this order: each no earlier than the one before.
            received = max(start + timedelta(minutes=2), last_received.get(account, start))
            last_received[account] = received
            topic, value = cdr(account, f"SW-{account}", seq[account], start, seconds, usage_id=f"U-{account}-{n}",
                               received=received, event_id=event_id)
        else:
            _, account, cycle, fen = spec
            topic, value = bill(account, f"B-{account}-{cycle}", cycle, fen, when=month_start(2026, 4))
            value = orjson.dumps({**orjson.loads(value), "eventId": str(event_id)})
            received = month_start(2026, 4)
        messages.append((topic, account.encode(), value, received))
    return [m[:3] for m in messages]


async def _decide(bootstrap: str, database_url: str, log_dir, messages) -> list[dict]:
    log_dir.mkdir()
    async with workers_on(bootstrap, database_url, log_dir) as workers:
        workers.timer_clock = "business"
        await publish(bootstrap, [tariff_message()])
        for service in ("billing_guard", "dunning"):
            workers.start(service)
        for service in ("billing_guard", "dunning"):
            await workers.wait_healthy(service)
        await publish(bootstrap, messages)
        conn = await connect(database_url)
        try:
            loop, expected = asyncio.get_running_loop(), len(messages) + 1
            deadline = loop.time() + 90
            while await _decided(conn) < (expected, sum(1 for m in messages if m[0] == "billing.bill.v1")):
                assert loop.time() < deadline, workers.log("billing_guard")[-3000:]
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # timers due on the final business clock fire within a few intervals
            rows = await conn.fetch("SELECT payload FROM events ORDER BY global_position")
        finally:
            await conn.close()
    return [orjson.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]


def tariff_message():
    topic, value = tariff("T-STD", 1, month_start(2025, 1), 10, month_start(2024, 12))
    return topic, b"T-STD", orjson.dumps({**orjson.loads(value), "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, "issue-15/tariff"))})


async def _decided(conn) -> tuple[int, int]:
    guard = await conn.fetchval("SELECT count(*) FROM processed_inputs WHERE consumer = 'billing_guard'"
                                " AND topic LIKE 'billing.%'")
    dunning = await conn.fetchval("SELECT count(*) FROM processed_inputs WHERE consumer = 'dunning'"
                                  " AND topic = 'billing.bill.v1'")
    return guard, dunning


async def _database(postgres_admin_url: str) -> str:
    from ..conftest import _with_database
    name = f"wuguan_t_{uuid.uuid4().hex[:12]}"
    admin = await connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _with_database(postgres_admin_url, name)


def _guard(log: list[dict]) -> list[dict]:
    return [d for d in log if d["service"] == "billing_guard"]


def _caused_by(log: list[dict], service: str, inputs: set[str]) -> list[dict]:
    return [d for d in log if d["service"] == service and set(d["causedBy"]) & inputs]


def _canonical(log: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in log)


async def test_CP3_LATE_two_cross_topic_interleavings_store_the_same_decisions(e2e_broker, database_url,
                                                                              postgres_admin_url, tmp_path):
    messages = inputs()
    bills_first = [m for m in messages if m[0] == "billing.bill.v1"] + [m for m in messages if m[0] != "billing.bill.v1"]
    mixed = interleave(messages, random.Random(7), lane=lambda m: (m[0], m[1]))
    first = await _decide(e2e_broker.bootstrap, database_url, tmp_path / "a", bills_first)
    second_broker = RestartableBroker()
    try:
        second = await _decide(second_broker.bootstrap, await _database(postgres_admin_url), tmp_path / "b", mixed)
    finally:
        second_broker.stop()
    assert _canonical(_guard(first)) == _canonical(_guard(second))
    # Dunning sees only the bills here, each account's in order; what its timers decide depends on
    # when the service-wide business clock passes a due date among other accounts' inputs (a
    # property of business-clock timers, not of topic order), so the e2e compares the decisions
    # the inputs cause; tests/unit/test_guard_interleavings.py compares dunning's timers too.
    bills = {orjson.loads(m[2])["eventId"] for m in messages if m[0] == "billing.bill.v1"}
    by_bills = _caused_by(first, "dunning", bills)
    assert by_bills and _canonical(by_bills) == _canonical(_caused_by(second, "dunning", bills))

    def of(kind, account=HUGE):
        return [d for d in first if d["decisionType"] == kind and d["payload"].get("accountId") == account]

    # The reported case: every CDR in the cycle of its call start; March is exactly 5x: no alert.
    assert of("guard.HugeFeeAlert") == []
    rated = of("guard.CdrRated")
    assert Counter(d["payload"]["cycle"] for d in rated)["2026-02"] == 2 and all(d["outcome"] == "charged" for d in rated)
    closed = {d["payload"]["cycle"]: d["payload"]["chargesMinor"] for d in of("guard.UsageCycleClosed")}
    assert closed["2026-02"] == 1000 and len(closed) == 6
    # The offline account: the week-late CDRs of a closed cycle are late adjustments to their own cycle.
    late = [d for d in of("guard.CdrRated", OFFLINE) if d["outcome"] == "lateAdjustment"]
    assert late and all(d["payload"]["cycle"] == d["payload"]["startDateTime"][:7] for d in late)
    assert all("CP3.LATE" in d["ruleIds"] and d["payload"]["flags"] == ["LATE_ADJUSTMENT"] for d in late)
