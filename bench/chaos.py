"""`make chaos` / `python -m bench.chaos`: kill -9 workers and restart Postgres mid-run, then
prove the outcome equals an undisturbed run of the same inputs.

Two runs, each on a broker and an embedded Postgres of its own: one undisturbed, one where a
random worker (billing_guard or dunning) is killed with SIGKILL and restarted at least
CHAOS_KILLS times while inputs stream in, and Postgres is stopped and started again on the
same data directory once. Compared afterwards: every stored decision (id, stream, version,
type, payload), the processed inputs, the pending-timer and business-clock projections, and
the decision topics (every stored decision published; duplicates from the at-least-once relay
are counted, not hidden).

Inputs are chosen so the outcome is a function of the inputs alone: each account has its own
switch (so sequence checks see one partition's order), dunning gets unpaid bills due two days
ago at noon (timers fire on the wall clock but far from any boundary), payments go to accounts
without a dunning bill.

Environment: CHAOS_EVENTS (default 100000), CHAOS_KILLS (5), CHAOS_SEED (11).
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from schemas.registry import DECISION_TOPICS
from services.common.db import connection
from services.common.eventstore.migrate import migrate
from services.common.eventstore.verify import verify_chain
from services.common.localstack.embedded import create_database, free_port, start_broker, start_postgres
from services.common.localstack.processes import spawn_worker, stop_processes
from services.common.localstack.topics import create_topics
from services.common.topic_reader import read_to_end, repartition_behind

from .workload import Workload

SERVICES = ("billing_guard", "dunning")
PARTITIONS = 3


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_inputs(events: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    """About 85 % CDRs, 10 % unpaid bills, 5 % payments, on disjoint accounts.

    Kafka orders a partition of one topic, not two topics: an account fed by CDRs and by bills
    would see them interleaved differently in every run (a CDR before or after its cycle closed),
    so each account gets inputs from one topic only, and each CDR account its own switch.
    """
    accounts = max(60, events // 40)
    wl = Workload(accounts=accounts, switches=1, seed=seed, tag="C")
    cdr_accounts = wl.accounts[: accounts // 2]
    bill_accounts = iter(f"ACC-CB-{i:06d}" for i in range(10**6))
    pay_accounts = iter(f"ACC-CP-{i:06d}" for i in range(10**6))
    out: list[tuple[str, bytes, bytes]] = [wl.tariff()[1]]
    rng = random.Random(seed)
    n = 0
    while len(out) < events:
        roll = rng.random()
        n += 1
        if roll < 0.10:
            out.append(wl.bill(next(bill_accounts), days_overdue=2, fen=1_000 + n, n=0)[1])
        elif roll < 0.15:
            out.append(wl.payment(next(pay_accounts), bill_n=n, fen=500 + n)[1])
        else:
            account = rng.choice(cdr_accounts)
            wl.switches = [f"SW-{account}"]
            wl.sequence.setdefault(wl.switches[0], 0)
            out.append(wl.cdr(account)[1])
    return out


@dataclass
class Outcome:
    decisions: dict = field(default_factory=dict)      # event_id -> (service, stream, version, type, payload)
    processed: set = field(default_factory=set)        # (consumer, event_id, content_hash)
    timers: set = field(default_factory=set)           # pending timers, publication time left out
    claims: set = field(default_factory=set)           # unique claims, log position left out
    snapshots: set = field(default_factory=set)        # snapshot streams' states, write count left out
    clocks: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)      # service -> Counter(decisionId)
    finance_checksum: str = ""                         # `wuguan projections rebuild` over the log
    finance_rows: dict = field(default_factory=dict)   # table -> Counter(row without positions)
    chain_ok: bool = False
    kills: int = 0
    rebalances: int = 0
    postgres_restarts: int = 0
    store_retries: float = 0.0
    seconds: float = 0.0


class Run:
    def __init__(self, name: str, inputs, tmp: Path):
        self.name, self.inputs, self.tmp = name, inputs, tmp / name
        self.tmp.mkdir(parents=True)
        self.workers: dict[str, subprocess.Popen] = {}
        self.ports = {s: free_port() for s in SERVICES}
        self.retries_seen = 0.0

    async def start(self) -> None:
        self.broker = start_broker(log_path=self.tmp / "broker.log")
        self.pg = start_postgres(Path(tempfile.mkdtemp(prefix="wgc-", dir="/tmp")))
        await create_database(self.pg.url(), "wuguan")
        self.database_url = self.pg.url("wuguan")
        async with connection(self.database_url) as conn:
            await migrate(conn)
        await create_topics(self.broker.bootstrap, PARTITIONS)
        for service in SERVICES:
            self.spawn(service)
        for service in SERVICES:
            await self.wait_healthy(service)

    def env(self) -> dict:
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap, "DATABASE_URL": self.database_url,
               "WUGUAN_PARTITIONS": str(PARTITIONS), "WUGUAN_FAST_GROUP_JOIN": "true",
               "WUGUAN_TIMER_INTERVAL_MS": "200", "WUGUAN_TIMER_CLOCK": "wall"}
        env.update({f"WUGUAN_{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        return env

    def spawn(self, service: str) -> None:
        self.workers[service] = spawn_worker(service, self.env(), self.tmp / f"{service}.log")

    def kill(self, service: str) -> None:
        process = self.workers.pop(service)
        self.retries_seen += self.store_retries(service)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def store_retries(self, service: str) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}/metrics", timeout=2) as r:
                text = r.read().decode()
        except Exception:
            return 0.0
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("wuguan_store_retries_total{"))

    def restart_postgres(self) -> None:
        from pgserver._commands import pg_ctl

        server = self.pg.server
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        time.sleep(2.0)  # the workers see refused connections for a while
        server.ensure_postgres_running()

    async def wait_healthy(self, service: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.workers[service]
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited {process.returncode}: see {self.tmp}/{service}.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            await asyncio.sleep(0.3)
        raise RuntimeError(f"{self.name}: {service} not healthy after {timeout_s}s")

    async def publish_first(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            topic, key, value = self.inputs[0]
            await producer.send_and_wait(topic, key=key, value=value)
        finally:
            await producer.stop()
        self.inputs = self.inputs[1:]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with connection(self.database_url) as conn:
                if await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'guard.TariffVersionAccepted'"):
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError("the tariff was not accepted")

    async def publish(self, chunks: int, gap_s: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", linger_ms=5,
                                    enable_idempotence=False)
        await producer.start()
        try:
            size = -(-len(self.inputs) // chunks)
            for i in range(0, len(self.inputs), size):
                futures = [await producer.send(t, key=k, value=v) for t, k, v in self.inputs[i:i + size]]
                await asyncio.gather(*futures)
                await asyncio.sleep(gap_s)
        finally:
            await producer.stop()

    async def rebalance(self, stay_s: float) -> None:
        """A second guard worker joins the group (partitions move to it mid-batch), stays a while,
        and leaves the hard way (they move back): the fencing of chains and the acknowledgement
        after commit are what keep the outcome equal."""
        env = {**self.env(), "WUGUAN_BILLING_GUARD_PORT": str(free_port())}
        second = spawn_worker("billing_guard", env, self.tmp / "billing_guard-2.log")
        await asyncio.sleep(stay_s)
        second.send_signal(signal.SIGKILL)
        second.wait()

    async def chaos(self, kills: int, interval_s: float, rng: random.Random, outcome: Outcome) -> None:
        restart_at = kills // 2
        for i in range(kills):
            await asyncio.sleep(interval_s)
            if i == 1:
                log(f"{self.name}: a second billing_guard joins for {2 * interval_s:.0f} s, then is killed")
                await self.rebalance(2 * interval_s)
                outcome.rebalances += 1
            service = rng.choice(SERVICES)
            self.kill(service)
            outcome.kills += 1
            log(f"{self.name}: kill -9 {service} ({outcome.kills}/{kills})")
            if i == restart_at:
                log(f"{self.name}: restarting Postgres")
                await asyncio.to_thread(self.restart_postgres)
                outcome.postgres_restarts += 1
            self.spawn(service)

    async def settle(self, timeout_s: float) -> None:
        """Every input handled, every decision relayed, nothing due, and the log still for 3 s."""
        expected = {"billing_guard": 0, "dunning": 0}
        from services.billing_guard.decider import INPUT_TOPICS as guard_topics
        from services.dunning.decider import INPUT_TOPICS as dunning_topics

        for topic, _, _ in self.inputs:
            expected["billing_guard"] += topic in guard_topics
            expected["dunning"] += topic in dunning_topics
        deadline = time.monotonic() + timeout_s
        stable_since, last = None, None
        while time.monotonic() < deadline:
            for service, process in list(self.workers.items()):
                if process.poll() is not None:
                    raise RuntimeError(f"{self.name}: {service} exited {process.returncode}; see {self.tmp}")
            try:
                async with connection(self.database_url) as conn:
                    state = await conn.fetchrow(
                        "SELECT (SELECT count(*) FROM events) AS events,"
                        " (SELECT count(*) FROM processed_inputs WHERE consumer = 'billing_guard'"
                        "   AND topic LIKE 'billing.%') AS guard,"
                        " (SELECT count(*) FROM processed_inputs WHERE consumer = 'dunning'"
                        "   AND topic LIKE 'billing.%') AS dunning,"
                        " (SELECT count(*) FROM pending_timers WHERE published_at IS NULL AND due_at <= now()) AS due,"
                        " (SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM relay_checkpoints r"
                        "   WHERE r.relay = 'relay:' || e.service"
                        "   AND (r.tx_id, r.global_position) >= (e.tx_id, e.global_position))) AS unrelayed")
            except Exception:
                await asyncio.sleep(0.5)
                continue
            done = (state["guard"] >= expected["billing_guard"] and state["dunning"] >= expected["dunning"]
                    and state["due"] == 0 and state["unrelayed"] == 0
                    and not await repartition_behind(self.broker.bootstrap, "billing_guard"))
            key = tuple(state.values())
            if done and key == last:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 3:
                    return
            else:
                stable_since = None
            last = key
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{self.name}: did not settle in {timeout_s}s (last {last}, expected {expected})")

    async def outcome(self, outcome: Outcome) -> Outcome:
        async with connection(self.database_url) as conn:
            for r in await conn.fetch("SELECT event_id::text AS id, service, stream_id, stream_version, event_type,"
                                      " payload FROM events"):
                outcome.decisions[r["id"]] = (r["service"], r["stream_id"], r["stream_version"], r["event_type"],
                                              orjson.dumps(r["payload"], option=orjson.OPT_SORT_KEYS))
            outcome.processed = {tuple(r) for r in await conn.fetch(
                "SELECT consumer, event_id, content_hash FROM processed_inputs")}
            outcome.timers = {tuple(r) for r in await conn.fetch(
                "SELECT timer_id, service, stream_id, partition_key, due_at_text, kind, data::text FROM pending_timers")}
            outcome.claims = {tuple(r) for r in await conn.fetch("SELECT service, claim_key, value FROM unique_claims")}
            # The revision counts writes, i.e. batches, which differ between any two runs.
            outcome.snapshots = {tuple(r) for r in await conn.fetch(
                "SELECT service, stream_id, version, state::text FROM stream_snapshots")}
            outcome.clocks = {r["service"]: r["watermark"] for r in await conn.fetch("SELECT * FROM business_clocks")}
            outcome.chain_ok = (await verify_chain(conn)).ok
        if (Path(__file__).resolve().parents[1] / "services" / "finance" / "projector.py").exists():
            rebuilt = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "services", "projections", "rebuild"],
                capture_output=True, text=True, env={**os.environ, "DATABASE_URL": self.database_url})
            outcome.finance_checksum = rebuilt.stdout.strip().splitlines()[-1] if rebuilt.returncode == 0 else (
                f"FAILED: {rebuilt.stderr.strip()[-300:]}")
            outcome.finance_rows = await self.finance_rows()
        for service in SERVICES:
            records = await asyncio.wait_for(read_to_end(self.broker.bootstrap, DECISION_TOPICS[service]), 60)
            outcome.published[service] = Counter(orjson.loads(r.value)["decisionId"] for r in records)
        return outcome

    async def finance_rows(self) -> dict:
        """Every finance projection row without its log-position columns.

        Positions follow commit order across workers, which no two runs share (with or without
        chaos), so `wuguan projections checksum` differs between runs by design; the rows'
        content must not."""
        from services.finance.schema import PROJECTION_TABLES

        async with connection(self.database_url) as conn:
            out = {}
            for name, _ in PROJECTION_TABLES:
                columns = [r["column_name"] for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'finance'"
                    " AND table_name = $1 ORDER BY ordinal_position", name) if "position" not in r["column_name"]]
                listed = ", ".join(f'"{c}"::text' for c in columns)
                rows = await conn.fetch(f"SELECT {listed} FROM finance.{name}")
                out[name] = Counter(tuple(r) for r in rows)
            return out

    def stop(self) -> None:
        stop_processes(list(self.workers.values()))
        self.broker.stop()
        self.pg.stop()
        import shutil

        shutil.rmtree(self.pg.data_dir, ignore_errors=True)


async def run(inputs, *, chaos: bool, kills: int, seed: int, tmp: Path, interval_s: float = 5.0) -> Outcome:
    name = "chaos" if chaos else "calm"
    r = Run(name, inputs, tmp)
    outcome = Outcome()
    started = time.monotonic()
    await r.start()
    try:
        # The tariff comes first and is decided before any CDR: CDRs on another topic could
        # otherwise overtake it and go unrated, in one run and not the other.
        await r.publish_first()
        chunks = kills + 2 if chaos else 1
        tasks = [asyncio.create_task(r.publish(chunks, interval_s if chaos else 0))]
        if chaos:
            tasks.append(asyncio.create_task(r.chaos(kills, interval_s, random.Random(seed), outcome)))
        await asyncio.gather(*tasks)
        for service in SERVICES:
            await r.wait_healthy(service)
        await r.settle(timeout_s=max(120, len(inputs) / 150))
        outcome.seconds = round(time.monotonic() - started, 1)
        outcome.store_retries = r.retries_seen + sum(r.store_retries(s) for s in SERVICES)
        return await r.outcome(outcome)
    finally:
        r.stop()


def compare(calm: Outcome, chaos: Outcome) -> list[str]:
    """Readable differences; empty when the disturbed run ended exactly like the calm one."""
    out = []
    lost = calm.decisions.keys() - chaos.decisions.keys()
    extra = chaos.decisions.keys() - calm.decisions.keys()
    out += [f"lost decision {k} {calm.decisions[k][3]}" for k in sorted(lost)[:20]]
    out += [f"unexpected decision {k} {chaos.decisions[k][3]}" for k in sorted(extra)[:20]]
    changed = [k for k in calm.decisions.keys() & chaos.decisions.keys() if calm.decisions[k] != chaos.decisions[k]]
    out += [f"decision {k} differs: {calm.decisions[k][:4]} vs {chaos.decisions[k][:4]}" for k in sorted(changed)[:20]]
    if calm.processed != chaos.processed:
        out.append(f"processed inputs differ: missing {sorted(calm.processed - chaos.processed)[:5]},"
                   f" extra {sorted(chaos.processed - calm.processed)[:5]}")
    if calm.timers != chaos.timers:
        out.append(f"pending timers differ: {len(calm.timers ^ chaos.timers)} rows")
    if calm.claims != chaos.claims:
        out.append(f"unique claims differ: {len(calm.claims ^ chaos.claims)} rows")
    if calm.snapshots != chaos.snapshots:
        out.append(f"snapshot streams differ: {len(calm.snapshots ^ chaos.snapshots)} rows")
    if calm.clocks != chaos.clocks:
        out.append(f"business clocks differ: {calm.clocks} vs {chaos.clocks}")
    for service in SERVICES:
        stored = {k for k, v in chaos.decisions.items() if v[0] == service}
        published = set(chaos.published.get(service, ()))
        if stored != published:
            out.append(f"{service}: {len(stored - published)} stored decisions not published,"
                       f" {len(published - stored)} published but not stored")
    if "FAILED" in calm.finance_checksum or "FAILED" in chaos.finance_checksum:
        out.append(f"finance projections rebuild failed: {calm.finance_checksum!r} / {chaos.finance_checksum!r}")
    for table in sorted(set(calm.finance_rows) | set(chaos.finance_rows)):
        a, b = calm.finance_rows.get(table, Counter()), chaos.finance_rows.get(table, Counter())
        if a != b:
            out.append(f"finance.{table} differs: {sum((a - b).values())} rows only undisturbed,"
                       f" {sum((b - a).values())} only disturbed, e.g. {list((a - b) or (b - a))[:2]}")
    if not chaos.chain_ok or not calm.chain_ok:
        out.append("hash chain broken")
    return out


def summary(calm: Outcome, chaos: Outcome, events: int) -> dict:
    dup = {s: sum(n - 1 for n in c.values() if n > 1) for s, c in chaos.published.items()}
    return {"inputs": events, "decisions": len(chaos.decisions), "calm_decisions": len(calm.decisions),
            "kills": chaos.kills, "rebalances": chaos.rebalances, "postgres_restarts": chaos.postgres_restarts,
            "store_retries_seen": chaos.store_retries, "calm_seconds": calm.seconds, "chaos_seconds": chaos.seconds,
            "relay_duplicates_on_topic": dup,
            "finance_rows_compared": {t: sum(c.values()) for t, c in chaos.finance_rows.items()}}


async def main_async() -> int:
    events = int(os.environ.get("CHAOS_EVENTS", "100000"))
    kills = int(os.environ.get("CHAOS_KILLS", "5"))
    seed = int(os.environ.get("CHAOS_SEED", "11"))
    tmp = Path(tempfile.mkdtemp(prefix="wuguan-chaos-"))
    inputs = build_inputs(events, seed)
    log(f"{len(inputs)} inputs; undisturbed run first; logs in {tmp}")
    calm = await run(inputs, chaos=False, kills=0, seed=seed, tmp=tmp)
    log(f"calm: {len(calm.decisions)} decisions in {calm.seconds}s")
    interval = max(5.0, calm.seconds / (kills + 2))
    chaotic = await run(inputs, chaos=True, kills=kills, seed=seed, tmp=tmp, interval_s=interval)
    diffs = compare(calm, chaotic)
    print(orjson.dumps(summary(calm, chaotic, len(inputs)), option=orjson.OPT_INDENT_2).decode())
    if diffs:
        print("DIFFERENCES:\n  " + "\n  ".join(diffs[:60]))
        return 1
    print("OK: the disturbed run stored, projected and published exactly what the undisturbed run did")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)  # kept, with the workers' logs, when the runs differ
    return 0


def main() -> None:
    sys.exit(asyncio.run(main_async()))


if __name__ == "__main__":
    main()
