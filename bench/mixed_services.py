"""(i) All three services' workers together on one mixed workload, end to end through the broker.

billing_guard, dunning and cards each run as a worker process, on a broker and database of the
stage's own (bench.private_stack). Untimed setup: the tariff in force, and cards stock then sales
(two waves, as in (d)). Then one mix is published, interleaved evenly:
- (b)'s guard mix: CDRs with 1 % bills, 0.5 % payments, 0.1 % disputes (guard and dunning both
  consume the bills and payments);
- dunning's own bills, 1 per 50 CDRs, due 2 to 65 days ago, half of them paid;
- card complaints, 1 per 100 CDRs, on the cards sold in the setup.
Measured from the first publish until every service has processed every published input it
consumes (processed or dead-lettered, on the published topics only: decisions the services relay
to one another and fired timers are their own work, not inputs) and every relay has caught up.
inputs/s counts each published message once; service_inputs/s counts it once per consuming
service; decisions/s counts every decision stored meanwhile, by all three services.
Environment: BENCH_MIXED_CDRS (default BENCH_EVENTS / 2).
"""
from __future__ import annotations

import asyncio
import os
import time

from services.billing_guard.decider import INPUT_TOPICS as GUARD_TOPICS
from services.cards.decider import INPUT_TOPICS as CARDS_TOPICS
from services.dunning.decider import INPUT_TOPICS as DUNNING_TOPICS

from .private_stack import private_stack
from .progress import log
from .workload import Workload

TOPICS = {"billing_guard": GUARD_TOPICS, "dunning": DUNNING_TOPICS, "cards": CARDS_TOPICS}


def interleave(*lists: list) -> list:
    """Every list's items spread evenly through one, each list keeping its own order."""
    ranked = [(i / len(items), k, i) for k, items in enumerate(lists) for i in range(len(items))]
    return [lists[k][i] for _, k, i in sorted(ranked)]


def cards_setup(workload: Workload, complaints: int, outlets: int = 5) -> tuple[list, list, list]:
    """(stock, sales, complaints): each outlet's batch, then sold and used cards, then a complaint a card."""
    per_outlet = -(-complaints // outlets)
    stock, sales, sold = [], [], []
    for o in range(outlets):
        outlet = f"OUTLET-MIX-{o:02d}"
        serials = [f"8987{o:02d}{i:08d}" for i in range(per_outlet * 2)]
        stock.append(workload.card_batch(outlet, serials)[1])
        for serial in serials[:per_outlet]:
            sales += [workload.card_activation(outlet, serial)[1], workload.card_use(serial, 700)[1]]
            sold.append((outlet, serial))
    return stock, sales, [workload.complaint(o, s)[1] for o, s in sold[:complaints]]


def dunning_bills(workload: Workload, count: int) -> list:
    """Bills of accounts the guard mix does not bill, due 2 to 65 days ago; every other one paid."""
    out = []
    for n, account in enumerate(workload.accounts[-count:]):
        out.append(workload.bill(account, days_overdue=(2, 10, 35, 65)[n % 4], n=1)[1])
        if n % 2:
            out.append(workload.payment(account, bill_n=1, fen=500)[1])
    return out


async def processed_counts(bench, topics: list[str]) -> dict[str, int]:
    """Inputs on `topics` each service has processed or dead-lettered."""
    counts: dict[str, int] = {}
    for (service, topic), n in (await bench.processed_inputs().counts()).items():
        if topic in topics:
            counts[service] = counts.get(service, 0) + n
    return counts


async def decisions_by_service(db) -> dict[str, int]:
    return {r["service"]: r["count"] for r in await db.fetch("SELECT service, count(*) FROM events GROUP BY 1")}


async def targets(bench, timed: list) -> dict[str, int]:
    """Before publishing: each service's count once it has processed every timed input it consumes."""
    base = await processed_counts(bench, sorted({t for t, _, _ in timed}))
    return {s: base.get(s, 0) + sum(t in TOPICS[s] for t, _, _ in timed) for s in TOPICS}


async def wait_all_processed(bench, timed: list, target: dict[str, int], timeout_s: float = 900) -> float:
    topics = sorted({t for t, _, _ in timed})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = await processed_counts(bench, topics)
        if all(done.get(s, 0) >= n for s, n in target.items()):
            return time.time()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"(i) mixed: {await processed_counts(bench, topics)} of {target} after {timeout_s}s")


async def setup(bench, workload: Workload, stock: list, sales: list) -> None:
    """The tariff in force and the cards sold, before the clock starts."""
    await bench.publish_all([workload.tariff()[1]])
    await bench.wait_processed("billing_guard", 1, 60)
    for wave in (stock, sales):
        base = await bench.processed("cards")
        await bench.publish_all(wave)
        await bench.wait_processed("cards", base + len(wave), 300)


async def run(bench) -> None:
    cdrs = int(os.environ.get("BENCH_MIXED_CDRS", str(max(1000, bench.events // 2))))
    workload = Workload(accounts=bench.accounts, tag="M", seed=13)
    guard = [m for _, m in workload.guard_mix(cdrs)]
    bills = dunning_bills(workload, min(cdrs // 50, len(workload.accounts) - cdrs // 100))
    stock, sales, complaints = cards_setup(workload, max(10, cdrs // 100))
    timed = interleave(guard, bills, complaints)
    async with private_stack(bench, "mixed", bench.partitions):
        for service in TOPICS:
            await bench.start_worker(service)
        await setup(bench, workload, stock, sales)
        log(f"(i) mixed: {len(timed)} inputs ({cdrs} CDRs, {len(bills)} dunning bills and payments,"
            f" {len(complaints)} complaints) to billing_guard, dunning and cards")
        decided, target = await decisions_by_service(bench.db), await targets(bench, timed)
        t0 = time.time()
        publisher = asyncio.create_task(bench.publish_all(timed))
        await wait_all_processed(bench, timed, target)
        await publisher
        ends = [await bench.wait_relayed(service, 300) for service in TOPICS]
        elapsed = max(ends) - t0
        after = await decisions_by_service(bench.db)
    bench.results["i_mixed"] = report(bench, timed, elapsed, decided, after)
    log(f"(i) {bench.results['i_mixed']}")


def report(bench, timed: list, elapsed: float, before: dict, after: dict) -> dict:
    by_topic: dict[str, int] = {}
    for topic, _, _ in timed:
        by_topic[topic] = by_topic.get(topic, 0) + 1
    service_inputs = {s: sum(n for t, n in by_topic.items() if t in TOPICS[s]) for s in TOPICS}
    decisions = {s: after.get(s, 0) - before.get(s, 0) for s in TOPICS}
    b = bench.results.get("b_guard", {}).get("events_per_s")
    rate = len(timed) / elapsed
    return {
        "inputs": len(timed), "inputs_by_topic": by_topic, "seconds": round(elapsed, 2),
        "inputs_per_s": round(rate, 1), "service_inputs": service_inputs,
        "service_inputs_per_s": round(sum(service_inputs.values()) / elapsed, 1),
        "decisions": decisions, "decisions_per_s": round(sum(decisions.values()) / elapsed, 1),
        "partitions": bench.partitions, "ratio_to_b_guard": round(rate / b, 3) if b else None,
        "stack": "a broker and database of the stage's own (embedded Tansu; the bench's Postgres)",
    }


def table_rows(results: dict) -> list[tuple[str, str, str]]:
    i = results.get("i_mixed") or {}
    if not i.get("inputs"):
        return []
    return [("(i) guard + dunning + cards end to end", f"{i['inputs_per_s']} inputs/s",
             f"{i['decisions_per_s']} decisions/s; {i['inputs']} inputs, {i['service_inputs_per_s']} service-inputs/s;"
             f" ratio to (b) {i['ratio_to_b_guard']}")]
