"""`make bench` / `python -m bench`: Wuguan against the raw ceiling of its own stack, in one run.

(a) baseline: bare aiokafka consumer + orjson + asyncpg COPY + offset commit per batch (bench.baseline);
(b) the billing_guard worker end to end (first publish -> last input processed, decisions stored
    and relayed), events/s and the ratio b/a; in process (bench.in_process), µs per input by phase
    (bench.phase_timer) and rows and index entries written per CDR (bench.row_counts);
(c) p50/p99 decision latency at half of (b)'s rate;
(d) cards complaint -> decision p99 at a paced 20/s;
(e) rebuild rate: `wuguan verify` walk and folding stored decisions back into state;
(f) worker RSS at 25/50/75/100 % of (b) and peak (VmHWM);
(g) optional py-spy profile of the worker under full load (BENCH_PROFILE=0 to skip);
(h) finance list queries and projection rebuild on a 1M-event store (bench.queries; BENCH_QUERY_EVENTS,
    BENCH_QUERIES=0 to skip);
(i) billing_guard, dunning and cards workers together on one mixed workload (bench.mixed_services);
(j) billing_guard with 1 and with 2 worker processes on 4 partitions (bench.guard_scaling).

Everything lives in a temp dir; embedded broker + Postgres unless KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL are set (a fresh database is created on that server either way).
Environment: BENCH_EVENTS (CDRs in (b), default 50000), BENCH_ACCOUNTS (default 5000),
BENCH_PROFILE (1), BENCH_PARTITIONS (6), BENCH_OUT (bench/results/latest.json), BENCH_STAGES
(a,b,c,d,e,g,h,i,j,k by default; e.g. BENCH_STAGES=b BENCH_EVENTS=1000000 for the worker's RSS over 1M CDRs),
BENCH_GUARD_WORKERS (1; replicas of billing_guard in one consumer group for (b)), BENCH_BASELINE_RUNS (3;
(a) reports the median run), BENCH_ROWS_CDRS (CDRs of (b)'s rows-per-CDR run; BENCH_EVENTS / 10, at most
2000), BENCH_PHASES (1; 0 leaves (b) in process untimed by phase), BENCH_MIXED_CDRS (BENCH_EVENTS / 2),
BENCH_SCALING_SETTLE (3 s).
"""
from __future__ import annotations

import asyncio
import collections
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.decision_types import cards as cards_types
from services.common.db import connect, connection
from services.common.eventstore.migrate import migrate
from services.common.localstack.embedded import create_database, free_port, start_broker, start_postgres
from services.common.localstack.processes import spawn_worker, stop_processes
from services.common.localstack.topics import create_topics
from services.common.topic_reader import repartition_behind

from .decision_counts import decisions_by_type
from .producer import new_producer
from .processed_inputs import ProcessedInputs
from .progress import log
from .row_counts import cdrs_only
from .statistics import (
    cores_by_process, cpu_share, cpu_times, gc_pauses, histogram_buckets, metric_sum, process_cpu_seconds, quantile,
    rebuilt_counts,
)
from .workload import Workload

ROOT = Path(__file__).resolve().parent
# (a)'s consumers, each a process of its own, and the key each reports under.
CONSUMERS = {"bench.baseline": "a_baseline", "bench.faust_floor": "a_faust_floor"}


def baseline_topic(module: str, run: int) -> str:
    # A topic per consumer and run: each run's consumer reads its own topic from the start.
    return f"{module}.v1.{run}"
# (f) RSS is sampled during (b); (c) and (g) need (b)'s worker.
STAGES = ("a", "b", "c", "d", "e", "g", "h", "i", "j", "k")


def rss_kib(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def histogram_quantile(before: dict, after: dict, q: float) -> float | None:
    """Prometheus-style estimate from the bucket deltas (linear within a bucket)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    if not total:
        return None
    rank, lower, prev = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * ((rank - prev) / max(cumulative - prev, 1e-9))
        lower, prev = bound, cumulative
    return None


class Bench:
    def __init__(self) -> None:
        self.events = int(os.environ.get("BENCH_EVENTS", "50000"))
        self.accounts = int(os.environ.get("BENCH_ACCOUNTS", "5000"))
        self.profile = os.environ.get("BENCH_PROFILE", "1") not in ("0", "", "false")
        self.partitions = int(os.environ.get("BENCH_PARTITIONS", "6"))
        # The baseline takes 1-2 s, so one run moves with the machine; the median of a few holds.
        self.baseline_runs = int(os.environ.get("BENCH_BASELINE_RUNS", "3"))
        # Replicas of billing_guard in (b): the switch streams are written from every partition.
        self.guard_workers = int(os.environ.get("BENCH_GUARD_WORKERS", "1"))
        self.out_path = Path(os.environ.get("BENCH_OUT", ROOT / "results" / "latest.json"))
        self.stages = set(os.environ.get("BENCH_STAGES", ",".join(STAGES)).replace(" ", "").split(","))
        if not self.stages <= set(STAGES):
            raise SystemExit(f"BENCH_STAGES: unknown stage(s) {sorted(self.stages - set(STAGES))}; known: {','.join(STAGES)}")
        self.tmp = Path(tempfile.mkdtemp(prefix="wuguan-bench-"))
        self.results: dict = {"config": {
            "events": self.events, "accounts": self.accounts, "partitions": self.partitions,
            "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }}
        self.broker = self.postgres = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.extra_env: dict[str, str] = {}
        self.producer: AIOKafkaProducer | None = None

    # -- infrastructure ----------------------------------------------------------------
    async def setup(self) -> None:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
            self.results["config"]["broker"] = "external"
        else:
            self.broker = start_broker(log_path=self.tmp / "broker.log")
            self.bootstrap = self.broker.bootstrap
            self.results["config"]["broker"] = "embedded (tansu)"
        if os.environ.get("DATABASE_URL"):
            admin = os.environ["DATABASE_URL"]
            self.results["config"]["postgres"] = "external"
        else:
            self.postgres = start_postgres(Path(tempfile.mkdtemp(prefix="wgb-", dir="/tmp")))
            admin = self.postgres.url()
            self.results["config"]["postgres"] = "embedded (pgserver)"
        self.admin_url = admin
        self.database_url = await self.migrated_database("wuguan_bench")
        await create_topics(self.bootstrap, self.partitions)
        admin_client = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin_client.start()
        try:
            existing = await admin_client.list_topics()
            wanted = [t for t in (baseline_topic(m, i) for m in CONSUMERS for i in range(self.baseline_runs))
                      if t not in existing]
            if wanted:
                await admin_client.create_topics([NewTopic(t, self.partitions, 1) for t in wanted])
        finally:
            await admin_client.close()
        self.producer = new_producer(self.bootstrap)
        await self.producer.start()
        self.db = await asyncpg.connect(self.database_url)
        self._processed_inputs: dict[asyncpg.Connection, ProcessedInputs] = {}
        log(f"broker {self.bootstrap}; database {urlsplit(self.database_url).path.lstrip('/')}; logs in {self.tmp}")

    async def migrated_database(self, prefix: str) -> str:
        """A new database on the bench's Postgres with the store's schema; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        await create_database(self.admin_url, name)
        url = urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))
        async with connection(url) as conn:
            await migrate(conn)
        return url

    async def teardown(self) -> None:
        stop_processes(list(self.workers.values()))
        if self.producer is not None:
            await self.producer.stop()
        if getattr(self, "db", None) is not None:
            await self.db.close()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
            shutil.rmtree(self.postgres.data_dir, ignore_errors=True)

    def worker_env(self) -> dict:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.database_url,
            "WUGUAN_PARTITIONS": str(self.partitions), "WUGUAN_FAST_GROUP_JOIN": "true",
            "WUGUAN_TIMER_CLOCK": "wall", "WUGUAN_LOG_LEVEL": "INFO",
        }
        env.update({f"WUGUAN_{s.upper()}_PORT": str(p) for s, p in self.ports.items() if "#" not in s})
        env.update(self.extra_env)  # a stage's own settings, e.g. (k)'s signing key
        return env

    async def start_worker(self, service: str, replica: int = 1) -> subprocess.Popen:
        """Replicas after the first join the same consumer group on a port of their own."""
        name = service if replica == 1 else f"{service}#{replica}"
        self.ports.setdefault(name, free_port())
        env = {**self.worker_env(), f"WUGUAN_{service.upper()}_PORT": str(self.ports[name])}
        process = spawn_worker(service, env, self.tmp / f"{name}.log")
        self.workers[name] = process
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}; see {self.tmp}/{name}.log")
            if await asyncio.to_thread(self._get, name, "/healthz") is not None:
                return process
            await asyncio.sleep(0.3)
        raise RuntimeError(f"{name} not healthy after 90 s")

    def _get(self, service: str, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}{path}", timeout=5) as r:
                return r.read().decode() if r.status == 200 else None
        except Exception:
            return None

    def stop_worker(self, service: str) -> None:
        stop_processes([self.workers.pop(service)])

    async def publish_all(self, messages, topic: str | None = None) -> None:
        futures = [await self.producer.send(topic or t, key=k, value=v) for t, k, v in messages]
        await asyncio.gather(*futures)

    def processed_inputs(self) -> ProcessedInputs:
        # One follower per database: a private stack (private_stack.py) points self.db elsewhere.
        return self._processed_inputs.setdefault(self.db, ProcessedInputs(self.db))

    async def processed(self, consumer: str) -> int:
        return await self.processed_inputs().count(consumer)

    async def wait_processed(self, consumer: str, target: int, timeout_s: float, on_progress=None) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = await self.processed(consumer)
            if on_progress:
                on_progress(n)
            if n >= target:
                return time.time()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{consumer}: {await self.processed(consumer)}/{target} processed after {timeout_s}s")

    async def wait_relayed(self, service: str, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # In commit order, as the relay reads: with several writers positions need not follow it.
            done = await self.db.fetchrow(
                "SELECT tx_id, global_position FROM relay_checkpoints WHERE relay = $1", f"relay:{service}")
            behind = await self.db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM event_appends WHERE service = $1 AND (tx_id, last_position) > ($2::xid8, $3))",
                service, done["tx_id"] if done else 0, done["global_position"] if done else 0)
            if not behind and not await repartition_behind(self.bootstrap, service):
                return time.time()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"relay of {service} did not catch up in {timeout_s}s")


    # -- (a) ------------------------------------------------------------------------
    async def baseline(self, messages) -> None:
        """The bare aiokafka ceiling, and the same work through faust (the worker's framework),
        alternated run by run so both see the same machine; each reports its median run."""
        log(f"(a) baseline: {len(messages)} events, bare aiokafka + orjson + COPY, and the same through faust; "
            f"median of {self.baseline_runs} runs each")
        runs: dict[str, list[dict]] = {module: [] for module in CONSUMERS}
        for run in range(self.baseline_runs):
            for module, kept in runs.items():
                kept.append(await self.consume_run(module, baseline_topic(module, run), messages))
        for module, key in CONSUMERS.items():
            median = sorted(runs[module], key=lambda r: r["events_per_s"])[len(runs[module]) // 2]
            self.results[key] = {**median, "runs_events_per_s": [r["events_per_s"] for r in runs[module]]}
            log(f"(a) {module}: {self.results[key]}")
        a, floor = self.results["a_baseline"]["events_per_s"], self.results["a_faust_floor"]["events_per_s"]
        self.results["a_faust_floor"]["ratio_to_baseline"] = round(floor / a, 3)

    async def consume_run(self, module: str, topic: str, messages) -> dict:
        """One timed run of a consumer process: from the first publish to its last row committed."""
        await self.db.execute("DROP TABLE IF EXISTS bench_baseline")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, self.bootstrap, self.database_url, topic,
            str(len(messages)), stdout=asyncio.subprocess.PIPE, cwd=str(ROOT.parent))
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip().endswith(b"ready"), line  # faust's console spinner may come first
        t0 = time.time()
        await self.publish_all(messages, topic)
        published = time.time()
        line = await asyncio.wait_for(proc.stdout.readline(), 600)
        await proc.wait()
        report = orjson.loads(line[line.index(b"{"):])
        elapsed = report["last_ms"] / 1000 - t0
        return {"events": report["rows"], "seconds": round(elapsed, 2),
                "events_per_s": round(report["rows"] / elapsed, 1), "publish_seconds": round(published - t0, 2)}

    # -- (b) without the broker ----------------------------------------------------------
    async def in_process(self, messages) -> None:
        """(b)'s inputs straight into the guard's batch processor, on a database of their own;
        then CDRs only, for the rows each writes (new switches and usage ids, (b)'s accounts)."""
        url = await self.migrated_database("wuguan_inproc")
        inputs, rows = self.tmp / "in-process-inputs.json", self.tmp / "rows-per-cdr-inputs.json"
        inputs.write_bytes(orjson.dumps([[t, k.decode(), v.decode()] for t, k, v in messages]))
        count = int(os.environ.get("BENCH_ROWS_CDRS", str(min(2000, max(100, self.events // 10)))))
        rows.write_bytes(orjson.dumps(cdrs_only(self.workload.accounts, count)))
        log(f"(b) in process: {len(messages) - 1} inputs into the guard's batch processor, no broker")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.in_process", url, str(inputs), str(rows), stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT.parent), env={**os.environ, **self.worker_env()})
        out, _ = await asyncio.wait_for(proc.communicate(), 900)
        if proc.returncode:
            raise RuntimeError(f"bench.in_process exited with {proc.returncode}")
        report = orjson.loads(out.splitlines()[-1])
        self.results["b_phases"] = report.pop("phases")
        self.results["b_rows_per_cdr"] = report.pop("rows_per_cdr")
        log("; ".join(f"{row[0]}: {row[1]} ({row[2]})" for row in scale_rows(self.results)))
        a = self.results.get("a_baseline", {}).get("events_per_s")
        self.results["b_in_process"] = {**report, "ratio_to_baseline": round(report["events_per_s"] / a, 3) if a else None}
        log(f"(b) in process: {self.results['b_in_process']}")

    # -- (b) + (f) ------------------------------------------------------------------
    async def guard_throughput(self, messages, profile_messages) -> None:
        wl_setup = self.workload
        process = await self.start_worker("billing_guard")
        for replica in range(2, self.guard_workers + 1):
            await self.start_worker("billing_guard", replica)
        pid = process.pid
        rss_start = rss_kib(pid)
        _, tariff = wl_setup.tariff()
        await self.publish_all([tariff])
        await self.wait_processed("billing_guard", 1, 60)
        accepted = await self.db.fetchval("SELECT count(*) FROM events WHERE event_type = 'guard.TariffVersionAccepted'")
        if not accepted:
            raise RuntimeError("the bench tariff was not accepted; CDRs would not be rated")
        base = await self.processed("billing_guard")
        target = base + len(messages)
        log(f"(b) billing_guard: {len(messages)} inputs ({sum(m[0] == 'billing.cdr.v1' for m in messages)} CDRs)")
        samples: dict[str, dict] = {}
        marks = [0.25, 0.5, 0.75, 1.0]

        def progress(n: int) -> None:
            done = (n - base) / len(messages)
            while marks and done >= marks[0]:
                samples[f"{int(marks.pop(0) * 100)}%"] = rss_kib(pid)

        t0, cpu_before = time.time(), cpu_times()
        publisher = asyncio.create_task(self.publish_all(messages))
        t_processed = await self.wait_processed("billing_guard", target, 900, progress)
        await publisher
        t_relayed = await self.wait_relayed("billing_guard", 300)
        cpu = cpu_share(cpu_before, cpu_times())
        last_recorded = await self.db.fetchval("SELECT extract(epoch FROM max(recorded_at)) FROM events")
        by_type = await decisions_by_type(self.db, "billing_guard")
        decisions = sum(by_type.values())
        elapsed = t_relayed - t0
        rate = len(messages) / elapsed
        a = self.results.get("a_baseline", {}).get("events_per_s")
        every = [await asyncio.to_thread(self._get, name, "/metrics") or ""
                 for name in self.workers if name.split("#")[0] == "billing_guard"]
        self.results["b_guard"] = {
            "inputs": len(messages), "decisions_stored": decisions,
            "seconds_to_last_processed": round(t_processed - t0, 2),
            "seconds_to_last_stored": round(float(last_recorded) - t0, 2),
            "seconds_to_last_relayed": round(elapsed, 2),
            "workers": self.guard_workers,
            "events_per_s": round(rate, 1), "ratio_to_baseline": round(rate / a, 3) if a else None,
            "concurrency_conflict_retries": sum(metric_sum(t, "wuguan_concurrency_conflicts_total{") for t in every),
            # decided while the batch before was being written (batch_pipeline): kept, redone or undecided
            "batches_decided_ahead": {o: sum(metric_sum(t, "wuguan_batches_decided_ahead_total{", f'outcome="{o}"')
                                             for t in every) for o in ("kept", "redone", "undecided")},
            "cpu": cpu,
            "decisions_by_type": by_type,
        }
        self.results["f_rss"] = {
            "start_kib": rss_start.get("VmRSS"),
            "samples_kib": {k: v.get("VmRSS") for k, v in samples.items()},
            "peak_hwm_kib": rss_kib(pid).get("VmHWM"),
        }
        log(f"(b) {rate:.0f} inputs/s end to end" + (f" = {rate / a:.3f} x baseline" if a else "")
            + f"; RSS {self.results['f_rss']}")
        self._metrics_before_c = await asyncio.to_thread(self._get, "billing_guard", "/metrics") or ""

    async def latency(self, rate_max: float) -> None:
        rate = max(1.0, rate_max / 2)
        duration = float(os.environ.get("BENCH_LATENCY_SECONDS", "30"))
        count = int(rate * duration)
        messages = [self.workload.cdr() for _ in range(count)]
        log(f"(c) latency: {count} CDRs paced at {rate:.0f}/s for {duration:.0f}s")
        base = await self.processed("billing_guard")
        cpu_before, by_process_before, t0 = cpu_times(), process_cpu_seconds(), time.monotonic()
        sent = await self.paced(messages, rate)
        await self.wait_processed("billing_guard", base + count, 300)
        cpu = cpu_share(cpu_before, cpu_times())
        cpu["cores_by_process"] = cores_by_process(by_process_before, process_cpu_seconds(), time.monotonic() - t0)
        by_input = await self.latency_by_input(sent)
        latencies = list(by_input.values())
        metrics_after = await asyncio.to_thread(self._get, "billing_guard", "/metrics") or ""

        def buckets(name: str) -> tuple[dict, dict]:  # what the worker observed during the stage
            return (histogram_buckets(self._metrics_before_c, name, "billing_guard"),
                    histogram_buckets(metrics_after, name, "billing_guard"))

        def quantile_ms(name: str, q: float):
            return _ms(histogram_quantile(*buckets(name), q))

        self.results["c_latency"] = {
            "rate_per_s": round(rate, 1), "events": count, "measured": len(latencies),
            "achieved_rate_per_s": round(count / (max(sent.values()) - min(sent.values()) or 1), 1),
            "p50_ms": round(quantile(latencies, 0.5) * 1000, 1), "p99_ms": round(quantile(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "histogram_p50_ms": quantile_ms("wuguan_decision_latency_seconds", 0.5),
            "histogram_p99_ms": quantile_ms("wuguan_decision_latency_seconds", 0.99),
            # Where a slow decision waited: in its own batch's work, or before it (fetch, queue).
            "batch_p50_ms": quantile_ms("wuguan_batch_seconds", 0.5),
            "batch_p99_ms": quantile_ms("wuguan_batch_seconds", 0.99),
            "append_p99_ms": quantile_ms("wuguan_store_append_seconds", 0.99),
            "batch_inputs_p50": _round(histogram_quantile(*buckets("wuguan_batch_inputs"), 0.5)),
            "batch_inputs_p99": _round(histogram_quantile(*buckets("wuguan_batch_inputs"), 0.99)),
            "gc_full_pauses": gc_pauses(self._metrics_before_c, metrics_after, "billing_guard", "2"),
            "loop_lag_p99_ms": quantile_ms("wuguan_event_loop_lag_seconds", 0.99),
            "cpu": cpu,
            # p99 of the inputs sent in each third of the window: a latency that grows as the
            # topics grow points at the embedded broker (its fetches cost more as its log grows).
            "p99_ms_by_third": p99_by_third(sent, by_input),
        }
        log(f"(c) {self.results['c_latency']}")

    async def paced(self, messages, rate: float) -> dict[str, float]:
        sent, futures = {}, []
        start = time.monotonic()
        wall0 = time.time() - start
        for i, (event_id, (topic, key, value)) in enumerate(messages):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[event_id] = wall0 + time.monotonic()
            futures.append(await self.producer.send(topic, key=key, value=value))
        await asyncio.gather(*futures)
        return sent

    async def latencies(self, sent: dict[str, float]) -> list[float]:
        return list((await self.latency_by_input(sent)).values())

    async def latency_by_input(self, sent: dict[str, float]) -> dict[str, float]:
        """Input id -> its first decision's recorded_at minus its send time, for the inputs decided."""
        rows = await self.db.fetch(
            "SELECT causation_id, extract(epoch FROM min(recorded_at)) AS at FROM events"
            " WHERE causation_id = ANY($1::text[]) GROUP BY causation_id", list(sent))
        return {r["causation_id"]: float(r["at"]) - sent[r["causation_id"]] for r in rows}

    # -- (d) ------------------------------------------------------------------------
    async def cards(self) -> None:
        rate = float(os.environ.get("BENCH_COMPLAINT_RATE", "20"))
        duration = float(os.environ.get("BENCH_COMPLAINT_SECONDS", "30"))
        count = int(rate * duration)
        outlets = 10
        per_outlet = -(-count // outlets)
        await self.start_worker("cards")
        stock, sales = [], []
        sold: list[tuple[str, str]] = []
        for o in range(outlets):
            outlet = f"OUTLET-BENCH-{o:02d}"
            serials = [f"8986{o:02d}{i:08d}" for i in range(per_outlet * 3)]
            stock.append(self.workload.card_batch(outlet, serials)[1])
            for serial in serials[:per_outlet]:
                sales.append(self.workload.card_activation(outlet, serial)[1])
                sales.append(self.workload.card_use(serial, 700)[1])
                sold.append((outlet, serial))
        # Two waves: a batch is keyed by batchId, its sales by card serial, so on other partitions
        # a sale could overtake the batch that brought the card.
        setup = stock + sales
        for wave in (stock, sales):
            base = await self.processed("cards")
            await self.publish_all(wave)
            await self.wait_processed("cards", base + len(wave), 300)
        # Measured on a settled worker: its relay publishing the setup's ~1.2k decisions meanwhile
        # made the complaints of the first half second wait for it (docs/performance.md, run 20).
        await self.wait_relayed("cards", 120)
        complaints = [self.workload.complaint(outlet, serial) for outlet, serial in sold[:count]]
        log(f"(d) cards: {len(setup)} inventory events stored; {count} complaints at {rate:.0f}/s")
        base = await self.processed("cards")
        sent = await self.paced(complaints, rate)
        await self.wait_processed("cards", base + count, 120)
        latencies = await self.latencies(sent)
        replaced = await self.db.fetchval("SELECT count(*) FROM events WHERE event_type = $1"
                                          " AND causation_id = ANY($2::text[])", cards_types.CARD_REPLACED, list(sent))
        outcomes = await self.db.fetch("SELECT event_type, payload->>'outcome' AS outcome, count(*) FROM events"
                                       " WHERE causation_id = ANY($1::text[]) GROUP BY 1, 2", list(sent))
        self.results["d_cards"] = {
            "complaints": count, "rate_per_s": rate, "with_decision": len(latencies), "cards_replaced": replaced,
            "decisions": {f"{r['event_type']}/{r['outcome']}": r["count"] for r in outcomes},
            "p50_ms": round(quantile(latencies, 0.5) * 1000, 1), "p99_ms": round(quantile(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        }
        log(f"(d) {self.results['d_cards']}")
        self.stop_worker("cards")

    # -- (e) ------------------------------------------------------------------------
    async def rebuild(self) -> None:
        total = await self.db.fetchval("SELECT count(*) FROM events")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "services", "verify"], capture_output=True, text=True,
                             env={**os.environ, "DATABASE_URL": self.database_url}, cwd=str(ROOT.parent))
        verify_s = time.perf_counter() - t0
        from services.billing_guard.decider import GuardDecider
        from services.common.eventstore.store import read_all

        decider = GuardDecider()
        conn = await connect(self.database_url)
        states: dict = {}
        read_s = fold_s = 0.0
        position = folded = 0
        try:
            while True:
                t = time.perf_counter()
                page = await read_all(conn, position, 5000, service="billing_guard")
                read_s += time.perf_counter() - t
                if not page:
                    break
                t = time.perf_counter()
                for e in page:
                    state = states.get(e.stream_id)
                    if state is None:
                        state = decider.initial_state(e.stream_id)
                    states[e.stream_id] = decider.evolve(state, e.payload)
                fold_s += time.perf_counter() - t
                folded += len(page)
                position = page[-1].global_position
        finally:
            await conn.close()
        projection = {"projection_rebuild": "not available (no `wuguan projections rebuild` in this tree)"}
        if (ROOT.parent / "services" / "finance" / "projector.py").exists():
            t0 = time.perf_counter()
            rebuilt = subprocess.run([sys.executable, "-m", "services", "projections", "rebuild"],
                                     capture_output=True, text=True, cwd=str(ROOT.parent),
                                     env={**os.environ, "DATABASE_URL": self.database_url})
            seconds = time.perf_counter() - t0
            line = next((l for l in rebuilt.stdout.splitlines() if l.startswith("rebuilt:")), "")
            replayed, rebuild_s = rebuilt_counts(line) if line else (0, 0.0)
            projection = {"projection_rebuild": line or f"failed: {rebuilt.stderr.strip()[-300:]}",
                          "projection_rebuild_seconds": rebuild_s,
                          "projection_rebuild_events_per_s": round(replayed / rebuild_s, 1) if replayed else None,
                          "projection_rebuild_command_seconds": round(seconds, 2)}
        self.results["e_rebuild"] = {
            **projection,
            "verify_events": total, "verify_seconds": round(verify_s, 2),
            "verify_events_per_s": round(total / verify_s, 1), "verify_output": out.stdout.strip()[-200:],
            "replay_events": folded, "replay_streams": len(states),
            "replay_read_events_per_s": round(folded / read_s, 1) if read_s else None,
            "replay_fold_events_per_s": round(folded / fold_s, 1) if fold_s else None,
            "replay_total_events_per_s": round(folded / (read_s + fold_s), 1) if folded else None,
        }
        log(f"(e) {self.results['e_rebuild']}")

    # -- (g) ------------------------------------------------------------------------
    async def profile_worker(self, messages) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            self.results["g_profile"] = {"skipped": "py-spy not installed (pip install py-spy)"}
            return
        pid = self.workers["billing_guard"].pid
        raw = self.tmp / "guard.pyspy.txt"
        log(f"(g) profiling billing_guard under full load: {len(messages)} inputs")
        spy_proc = subprocess.Popen([spy, "record", "-p", str(pid), "-r", "97", "-f", "raw", "-o", str(raw),
                                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(1.0)
        base = await self.processed("billing_guard")
        t0 = time.time()
        await self.publish_all(messages)
        await self.wait_processed("billing_guard", base + len(messages), 900)
        rate = len(messages) / (time.time() - t0)
        spy_proc.send_signal(signal.SIGINT)
        try:
            spy_proc.wait(60)
        except subprocess.TimeoutExpired:
            spy_proc.kill()
        if not raw.exists():
            self.results["g_profile"] = {"skipped": f"py-spy wrote nothing: {spy_proc.stderr.read()[-300:]!r}"}
            return
        kept = ROOT / "results" / "latest-profile.txt"
        shutil.copy(raw, kept)
        self.results["g_profile"] = {"inputs": len(messages), "events_per_s_while_profiled": round(rate, 1),
                                     "raw_stacks": str(kept), **summarize_profile(raw)}
        log("(g) top self: " + "; ".join(f"{p}% {f}" for f, p in self.results["g_profile"]["self_top"][:8]))

    # -- report ---------------------------------------------------------------------
    def table(self) -> str:
        r = self.results
        a, b, c = r.get("a_baseline", {}), r.get("b_guard", {}), r.get("c_latency", {})
        d, e, f = r.get("d_cards", {}), r.get("e_rebuild", {}), r.get("f_rss", {})
        rows = [
            ("(a) baseline aiokafka+orjson+COPY", f"{a.get('events_per_s')} ev/s", f"{a.get('events')} ev in {a.get('seconds')} s"),
            ("(a) the same work through faust", f"{r.get('a_faust_floor', {}).get('events_per_s')} ev/s",
             f"ratio to baseline {r.get('a_faust_floor', {}).get('ratio_to_baseline')}: faust's own cost"),
            ("(b) the guard's batch processor, no broker", f"{r.get('b_in_process', {}).get('events_per_s')} ev/s",
             f"ratio to baseline {r.get('b_in_process', {}).get('ratio_to_baseline')}: Wuguan's own work"),
            ("(b) billing_guard end to end", f"{b.get('events_per_s')} ev/s",
             f"ratio b/a = {b.get('ratio_to_baseline')}; {b.get('decisions_stored')} decisions; relayed at {b.get('seconds_to_last_relayed')} s;"
             f" cores busy {b.get('cpu', {}).get('busy_pct')} %, stolen {b.get('cpu', {}).get('steal_pct')} %;"
             f" batches decided ahead {b.get('batches_decided_ahead')}"),
            ("(c) guard latency @ half max", f"p50 {c.get('p50_ms')} ms / p99 {c.get('p99_ms')} ms",
             f"{c.get('rate_per_s')}/s x {c.get('events')}; histogram p50 {c.get('histogram_p50_ms')} p99 {c.get('histogram_p99_ms')} ms;"
             f" batch p99 {c.get('batch_p99_ms')} ms, {c.get('batch_inputs_p99')} inputs; loop lag p99 {c.get('loop_lag_p99_ms')} ms;"
             f" stolen {c.get('cpu', {}).get('steal_pct')} %"),
            ("(d) cards complaint -> decision", f"p99 {d.get('p99_ms')} ms",
             f"p50 {d.get('p50_ms')} ms; {d.get('complaints')} at {d.get('rate_per_s')}/s; {d.get('cards_replaced')} replaced"),
            ("(e) finance projections rebuild", f"{e.get('projection_rebuild_events_per_s')} ev/s",
             f"{e.get('projection_rebuild')}; the command with its checksum {e.get('projection_rebuild_command_seconds')} s"),
            ("(e) verify walk", f"{e.get('verify_events_per_s')} ev/s", f"{e.get('verify_events')} events"),
            ("(e) replay (read + fold)", f"{e.get('replay_total_events_per_s')} ev/s",
             f"read {e.get('replay_read_events_per_s')} ev/s, fold {e.get('replay_fold_events_per_s')} ev/s"),
            ("(f) worker RSS (MiB)", f"peak {_mib(f.get('peak_hwm_kib'))}",
             "start " + str(_mib(f.get("start_kib"))) + "; " + ", ".join(
                 f"{k} {_mib(v)}" for k, v in (f.get("samples_kib") or {}).items())),
        ]
        rows[4:4] = scale_rows(r)  # beside (b)
        h = r.get("h_queries", {})
        if h.get("cases"):
            worst = max(h["cases"], key=lambda c: c["p99_ms"])
            rows.append(("(h) finance lists, 1M-event store", h.get("met", ""),
                         f"worst p99 {worst['p99_ms']} ms ({worst['case']}); table: python -m bench.queries"))
            rows.append(("(h) projections rebuild, 1M events", f"{h['rebuild']['events_per_s']} ev/s",
                         f"{h['rebuild']['seconds']} s; the command with its checksum {h['rebuild'].get('command_seconds')} s"
                         f" = {h['rebuild'].get('command_events_per_s')} ev/s"))
        g = r.get("g_profile", {})
        if g.get("self_top"):
            rows.append(("(g) profiled run", f"{g.get('events_per_s_while_profiled')} ev/s", "see hot spots below"))
        width = max(len(x[0]) for x in rows)
        lines = [f"{'measure'.ljust(width)} | {'value'.ljust(28)} | detail", "-" * (width + 80)]
        lines += [f"{n.ljust(width)} | {v.ljust(28)} | {d_}" for n, v, d_ in rows]
        if g.get("self_top"):
            lines.append("\nhot spots (py-spy, % of samples in the worker; self / inclusive):")
            lines += [f"  self {p:5.1f}%  {f_}" for f_, p in g["self_top"][:15]]
            lines += [f"  incl {p:5.1f}%  {f_}" for f_, p in g["inclusive_top"][:25]]
        return "\n".join(lines)

    async def scale_stages(self, guard_inputs) -> None:
        """(i), (j) and (k), each on a broker and database of its own."""
        from . import checkpoint_cost, guard_scaling, mixed_services

        if "i" in self.stages:
            await mixed_services.run(self)
        if "j" in self.stages:
            await guard_scaling.run(self, guard_inputs)
        if "k" in self.stages:
            await checkpoint_cost.run(self, guard_inputs)

    async def run(self) -> None:
        started = time.monotonic()
        await self.setup()
        try:
            self.workload = Workload(accounts=self.accounts)
            t = time.perf_counter()
            guard_inputs = [m for _, m in self.workload.guard_mix(self.events)]
            gen_s = time.perf_counter() - t
            self.results["config"]["generate_events_per_s"] = round(len(guard_inputs) / gen_s, 1)
            if "a" in self.stages:
                await self.baseline(guard_inputs)
            profile = self.profile and "g" in self.stages
            profile_inputs = [m for _, m in self.workload.guard_mix(max(2000, self.events // 4))] if profile else []
            if "b" in self.stages:
                _, tariff = self.workload.tariff()
                await self.in_process([tariff, *guard_inputs])
                await self.guard_throughput(guard_inputs, profile_inputs)
                if "c" in self.stages:
                    await self.latency(self.results["b_guard"]["events_per_s"])
                if profile:
                    await self.profile_worker(profile_inputs)
                for name in [n for n in self.workers if n.startswith("billing_guard")]:
                    self.stop_worker(name)
            if "d" in self.stages:
                await self.cards()
            if "e" in self.stages:
                await self.rebuild()
            await self.scale_stages(guard_inputs)
            if "h" in self.stages and os.environ.get("BENCH_QUERIES", "1") not in ("0", ""):
                from .queries import run_queries

                log("(h) finance list queries on a 1M-event store")
                self.results["h_queries"] = await run_queries(self.database_url)
        finally:
            self.results["config"]["wall_seconds"] = round(time.monotonic() - started, 1)
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            self.out_path.write_bytes(orjson.dumps(self.results, option=orjson.OPT_INDENT_2))
            await self.teardown()
            if os.environ.get("BENCH_KEEP", "0") in ("0", ""):
                shutil.rmtree(self.tmp, ignore_errors=True)
        print(self.table())
        print(f"\nresults: {self.out_path}")


def p99_by_third(sent: dict[str, float], latency: dict[str, float]) -> list[float]:
    """The p99 latency of the inputs sent in each third of the window, in ms."""
    start, end = min(sent.values()), max(sent.values())
    thirds: list[list[float]] = [[], [], []]
    for event_id, seconds in latency.items():
        thirds[min(2, int(3 * (sent[event_id] - start) / ((end - start) or 1)))].append(seconds)
    return [round(quantile(third, 0.99) * 1000, 1) for third in thirds]


def scale_rows(results: dict) -> list[tuple[str, str, str]]:
    """The table's rows of (b)'s rows and phases, (i) and (j)."""
    from . import checkpoint_cost, guard_scaling, mixed_services, row_counts

    return (row_counts.table_rows(results) + mixed_services.table_rows(results) + guard_scaling.table_rows(results)
            + checkpoint_cost.table_rows(results))


def summarize_profile(raw: Path, top: int = 30) -> dict:
    """py-spy raw (collapsed) stacks -> self and inclusive shares per function, idle excluded."""
    self_counts: collections.Counter = collections.Counter()
    incl_counts: collections.Counter = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        n = int(n)
        frames = stack.split(";")
        total += n
        leaf = frames[-1]
        if any(k in leaf for k in ("select (selectors.py", "_run_once (asyncio/base_events.py", "epoll")) or (
                "(threading.py" in leaf and "wait" in leaf):
            idle += n
        self_counts[_short(leaf)] += n
        for name in {_short(f) for f in frames}:
            incl_counts[name] += n
    pct = lambda c: round(100.0 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total, "idle_pct": pct(idle),
        "self_top": [(f, pct(c)) for f, c in self_counts.most_common(top)],
        "inclusive_top": [(f, pct(c)) for f, c in incl_counts.most_common(top + 20)],
    }


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"; keep package for project files
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    marker = "/work/main/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    return f"{name} ({path})"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _mib(kib) -> str:
    return "?" if not kib else f"{kib / 1024:.0f}"


def main() -> None:
    asyncio.run(Bench().run())
