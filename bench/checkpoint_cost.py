"""(k) What signed checkpoints cost (issue 14): billing_guard's inputs/s with and without them.

The same inputs as (b) go through one guard worker on a stack of their own, four times, in
alternation: without a signing key, with one (checkpoints every 60 s or 10,000 decisions, the
defaults), without, with. Runs alternate so that the machine warming up or a neighbour's load
falls on both sides; the median of each side is compared (goal: under 2% slower). Beside it, the
direct measure: the time the worker spent making checkpoints (wuguan_checkpoint_seconds) over the
runs' time, and how many it signed, so a run that signed none shows.
"""
from __future__ import annotations

import asyncio
import statistics

from services.common.audit.signing import generate

from .guard_scaling import one_run
from .private_stack import private_stack
from .progress import log
from .statistics import metric_sum

RUNS = (False, True, False, True)


async def run(bench, messages: list) -> None:
    key = bench.tmp / "checkpoint-bench.pem"
    if not key.exists():
        generate(key)
    rates: dict[bool, list[float]] = {False: [], True: []}
    checkpoints = signing_s = signed_run_s = 0.0
    for n, with_key in enumerate(RUNS):
        bench.extra_env = {"WUGUAN_CHECKPOINT_KEY": str(key)} if with_key else {}
        log(f"(k) billing_guard {'with' if with_key else 'without'} checkpoints: {len(messages)} inputs")
        try:
            async with private_stack(bench, f"checkpoints{n}", bench.partitions):
                result = await one_run(bench, 1, bench.workload.tariff()[1], messages)
                metrics = await asyncio.to_thread(bench._get, "billing_guard", "/metrics") or ""
                if with_key:
                    checkpoints += metric_sum(metrics, "wuguan_checkpoints_signed_total{")
                    signing_s += metric_sum(metrics, "wuguan_checkpoint_seconds_sum{")
                    signed_run_s += result["seconds"]
        finally:
            bench.extra_env = {}
        rates[with_key].append(result["events_per_s"])
        log(f"(k) {result['events_per_s']} inputs/s")
    without, with_ = statistics.median(rates[False]), statistics.median(rates[True])
    bench.results["k_checkpoint_cost"] = {
        "inputs": len(messages), "without_events_per_s": without, "with_events_per_s": with_,
        "slower_pct": round((1 - with_ / without) * 100, 2), "goal_pct": 2,
        "checkpoints_signed": int(checkpoints), "runs": {"without": rates[False], "with": rates[True]},
        # The direct measure, free of run-to-run noise: the worker's time spent making checkpoints
        # (wall time of each, which includes waiting on Postgres) over the runs' time.
        "signing_seconds": round(signing_s, 3),
        "signing_share_pct": round(100 * signing_s / signed_run_s, 3) if signed_run_s else None,
    }


def table_rows(results: dict) -> list[tuple[str, str, str]]:
    k = results.get("k_checkpoint_cost") or {}
    if not k.get("inputs"):
        return []
    return [("(k) guard with signed checkpoints", f"{k['with_events_per_s']} vs {k['without_events_per_s']} ev/s",
             f"{k['slower_pct']}% slower (goal < {k['goal_pct']}%); signing took {k['signing_share_pct']}% of the"
             f" worker's time; {k['checkpoints_signed']} checkpoints signed;"
             f" medians of {len(k['runs']['with'])} alternating runs each")]
