"""(j) billing_guard with 1 and with 2 worker processes in one consumer group, on 4 partitions.

Each run gets a broker and database of its own (bench.private_stack, topics of 4 partitions) and
the same inputs as (b): the tariff, then (b)'s mix, timed from the first publish to the last
input processed and every decision relayed. With 2 workers, the second joins before the tariff;
the bench then waits BENCH_SCALING_SETTLE seconds (3) for the group to settle before the clock
starts, and reports how many inputs each worker decided (its wuguan_inputs_consumed_total), so a
run in which one worker sat idle shows. On 2 cores a second worker cannot double the rate: the
broker, Postgres and the bench share those cores; the ratio is reported as it comes.
"""
from __future__ import annotations

import asyncio
import os
import time

from .private_stack import private_stack
from .progress import log

PARTITIONS = 4
SERVICE = "billing_guard"


def counters(metrics_text: str) -> tuple[float, float]:
    """(inputs decided, fired timers left out; batches retried on a concurrency conflict), from a
    worker's /metrics."""
    consumed = conflicts = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("wuguan_inputs_consumed_total{") and "wuguan." not in line.split("topic=")[1]:
            consumed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("wuguan_concurrency_conflicts_total{"):
            conflicts += float(line.rsplit(" ", 1)[1])
    return consumed, conflicts


async def worker_counts(bench) -> dict[str, tuple[float, float]]:
    names = [n for n in bench.workers if n.split("#")[0] == SERVICE]
    return {n: counters(await asyncio.to_thread(bench._get, n, "/metrics") or "") for n in names}


async def one_run(bench, workers: int, tariff, messages: list) -> dict:
    for replica in range(1, workers + 1):
        await bench.start_worker(SERVICE, replica)
    await bench.publish_all([tariff])
    await bench.wait_processed(SERVICE, 1, 60)
    if workers > 1:
        await asyncio.sleep(float(os.environ.get("BENCH_SCALING_SETTLE", "3")))
    before = await worker_counts(bench)
    t0 = time.time()
    publisher = asyncio.create_task(bench.publish_all(messages))
    processed = await bench.wait_processed(SERVICE, 1 + len(messages), 900)
    await publisher
    relayed = await bench.wait_relayed(SERVICE, 300)
    after = await worker_counts(bench)
    elapsed = relayed - t0
    return {"workers": workers, "inputs": len(messages), "seconds": round(elapsed, 2),
            "seconds_to_last_processed": round(processed - t0, 2), "events_per_s": round(len(messages) / elapsed, 1),
            "inputs_by_worker": {n: int(after[n][0] - before.get(n, (0, 0))[0]) for n in after},
            "concurrency_conflict_retries": sum(after[n][1] - before.get(n, (0, 0))[1] for n in after)}


async def run(bench, messages: list) -> None:
    runs = {}
    for workers in (1, 2):
        log(f"(j) billing_guard x {workers} on {PARTITIONS} partitions: {len(messages)} inputs")
        async with private_stack(bench, f"scaling{workers}", PARTITIONS):
            runs[workers] = await one_run(bench, workers, bench.workload.tariff()[1], messages)
        log(f"(j) {runs[workers]}")
    one, two = runs[1]["events_per_s"], runs[2]["events_per_s"]
    bench.results["j_guard_scaling"] = {
        "partitions": PARTITIONS, "inputs": len(messages), "cpus": os.cpu_count(),
        "one_worker_events_per_s": one, "two_workers_events_per_s": two,
        "ratio_two_to_one": round(two / one, 3) if one else None, "runs": {str(k): v for k, v in runs.items()},
    }


def table_rows(results: dict) -> list[tuple[str, str, str]]:
    j = results.get("j_guard_scaling") or {}
    if not j.get("inputs"):
        return []
    split = "/".join(str(v) for v in j["runs"]["2"]["inputs_by_worker"].values())
    return [("(j) guard, 1 vs 2 workers, 4 partitions",
             f"{j['one_worker_events_per_s']} -> {j['two_workers_events_per_s']} ev/s",
             f"ratio 2/1 = {j['ratio_two_to_one']}; inputs per worker with 2: {split};"
             f" conflict retries {j['runs']['2']['concurrency_conflict_retries']}; {j['cpus']} cores")]
