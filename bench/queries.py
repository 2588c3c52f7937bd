"""`python -m bench.queries`: the finance read API over a store of 1M decisions (issue 6), and
the projection rebuild rate on that store (issue 7).

1. a fresh database is filled with a year of decisions (bench.finance_history: account lives
   and card outlets from the real deciders, the rated-CDR bulk cloned from the real guard's),
   loaded with COPY and the real hash chain; `wuguan verify` walks it once;
2. `wuguan projections rebuild` projects it from position 0: events in the log / seconds of the
   whole command (which also prints the projections' checksum), as (e) in bench.run measures it;
3. `wuguan api` is started as its own process, and every list endpoint is asked a few hundred
   times over HTTP, one request at a time (first pages, filters, deep cursors, CSV exports,
   trails, the dashboard); p50 / p95 / p99 per case against the goal of p99 <= 50 ms.

Environment: BENCH_QUERY_EVENTS (1000000), BENCH_QUERY_ACCOUNTS (3000), BENCH_QUERY_MONTHS (12),
BENCH_QUERY_REQUESTS (200 a case), BENCH_QUERY_VERIFY (1), BENCH_OUT (the results JSON, whose
"h_queries" key is written), DATABASE_URL (a server to create the database on; else an
embedded Postgres; a database created on DATABASE_URL is dropped at the end unless BENCH_KEEP=1).
BENCH_QUERY_DATABASE names a database already holding a generated store, to measure again
without generating (development).
"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

from services.common.db import connection
from services.common.localstack.embedded import create_database, free_port, start_postgres
from services.common.localstack.processes import stop_processes
from services.finance import cursor as cursors
from services.finance.process import DEV_SECRET, spawn_api
from services.finance.schema import ensure_schema
from services.finance.tokens import mint

from . import event_writer
from .finance_history import Shape, build
from .statistics import quantile, rebuilt_counts

ROOT = Path(__file__).resolve().parent
GOAL_MS = 50.0


def log(msg: str) -> None:
    print(f"[bench.queries {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _cli(*args: str, database_url: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "services", *args], capture_output=True, text=True,
                          cwd=str(ROOT.parent), env={**os.environ, "DATABASE_URL": database_url})
    return done, time.perf_counter() - t0


async def fill_store(database_url: str, shape: Shape) -> dict:
    async with connection(database_url) as conn:
        await ensure_schema(conn)
        t0 = time.perf_counter()
        history = build(shape)
        t1 = time.perf_counter()
        loaded = await event_writer.load(conn, history.decisions)
        seconds = time.perf_counter() - t0
        await conn.execute("ANALYZE events; ANALYZE event_appends")
    # lives: the real deciders; then the bulk, the hash chain and COPY, streamed together.
    return {**history.counts, "events": loaded, "seconds": round(seconds, 1), "lives_seconds": round(t1 - t0, 1),
            "bulk_hash_copy_seconds": round(seconds - (t1 - t0), 1), "events_per_s": round(loaded / seconds, 1)}


async def _drop_database(server_url: str, name: str) -> None:
    # A 1M-event store is ~2 GB: not left behind on a server the bench did not start.
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class Api:
    """`wuguan api` as its own process, started as `wuguan run` starts it."""

    def __init__(self, database_url: str, log_path: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process, _ = spawn_api({"DATABASE_URL": database_url, "WUGUAN_API_PORT": str(self.port),
                                     "WUGUAN_WEB_HOST": "127.0.0.1", "WUGUAN_LOG_LEVEL": "WARNING"}, log_path)
        # spawn_api signs with the configured secret, else the development one.
        self.secret = os.environ.get("WUGUAN_API_SECRET") or DEV_SECRET

    async def caught_up(self, session: aiohttp.ClientSession, head: int, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"wuguan api exited {self.process.returncode}")
            try:
                async with session.get(f"{self.base}/healthz") as r:
                    if r.status == 200 and (await r.json())["projectedPosition"] >= head:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
        raise RuntimeError("wuguan api did not catch up with the log")

    def stop(self) -> None:
        stop_processes([self.process])


async def _sample(conn, sql: str, n: int, rng: random.Random) -> list:
    rows = [r[0] for r in await conn.fetch(sql)]
    if not rows:
        raise RuntimeError(f"nothing to ask for: {sql}")
    return [rng.choice(rows) for _ in range(n)]


async def _deep_cursors(conn, table: str, sort: str, key: str, n: int, rng: random.Random) -> list[str]:
    """Cursors pointing into the second half of a list, as a client paging far would hold."""
    total = await conn.fetchval(f"SELECT count(*) FROM finance.{table}")
    out = []
    for _ in range(n):
        row = await conn.fetchrow(f"SELECT {sort}, {key} FROM finance.{table} ORDER BY {sort}, {key}"
                                  " OFFSET $1 LIMIT 1", rng.randint(total // 2, max(total // 2, total - 2)))
        out.append(cursors.encode(row[0], row[1]))
    return out


async def _draw(database_url: str, n: int, rng: random.Random) -> dict:
    """Ids drawn from the store (n of each, with repeats), and the cursors of deep pages."""
    async with connection(database_url) as conn:
        drawn = {"as_of": await conn.fetchval("SELECT as_of FROM finance.checkpoint")}
        for name, sql in (("accounts", "SELECT account_id FROM finance.arrears"),
                          ("disputing", "SELECT account_id FROM finance.disputes"),
                          ("tickets", "SELECT ticket_id FROM finance.disputes"),
                          ("suspended", "SELECT account_id FROM finance.suspensions"),
                          ("outlets", "SELECT DISTINCT outlet_id FROM finance.card_replacements"),
                          ("decisions", "SELECT decision_id FROM finance.late_fees")):
            drawn[name] = await _sample(conn, sql, n, rng)
        # An account's trail: how far a deep page starts (half way through its decisions).
        drawn["middles"] = [await conn.fetchval(
            "SELECT global_position FROM finance.account_decisions WHERE account_id = $1"
            " ORDER BY global_position OFFSET (SELECT count(*) / 2 FROM finance.account_decisions"
            " WHERE account_id = $1) LIMIT 1", account) for account in drawn["accounts"]]
        drawn["deep_arrears"] = await _deep_cursors(conn, "arrears", "anchor_at", "occurrence_id", n, rng)
        drawn["deep_disputes"] = await _deep_cursors(conn, "disputes", "opened_at", "ticket_id", n, rng)
        drawn["deep_fees"] = await _deep_cursors(conn, "late_fees", "charged_at", "decision_id", n, rng)
    return drawn


async def cases(database_url: str, n: int, seed: int = 11) -> list[tuple[str, str, list[str]]]:
    """(case, role, the URLs to ask, one per request): ids drawn from the store, so each request
    asks for something that exists, and not always the same thing."""
    rng = random.Random(seed)
    d = await _draw(database_url, n, rng)
    accounts, disputing, tickets, suspended = d["accounts"], d["disputing"], d["tickets"], d["suspended"]
    months = [(d["as_of"].replace(day=1) - timedelta(days=30 * k)).strftime("%Y-%m") for k in range(1, 10)]

    def each(template: str, values) -> list[str]:
        return [template.format(v=quote(str(v), safe="")) for v in values]

    def window() -> list[str]:
        return [f"from={m}-01&to={m}-28" for m in (rng.choice(months) for _ in range(n))]

    same = lambda url: [url] * n  # noqa: E731
    F, A = "finance", "auditor"
    return [
        ("disputes: first page", F, same("/api/disputes")),
        ("disputes: status=acknowledged", F, same("/api/disputes?status=acknowledged")),
        ("disputes: account=", F, each("/api/disputes?account={v}", disputing)),
        ("disputes: from/to", F, ["/api/disputes?" + w for w in window()]),
        ("disputes: deep cursor", F, each("/api/disputes?cursor={v}", d["deep_disputes"])),
        ("credit-notes: first page", F, same("/api/credit-notes")),
        ("credit-notes: status=manual", F, same("/api/credit-notes?status=manual")),
        ("credit-notes: account=", F, each("/api/credit-notes?account={v}", disputing)),
        ("arrears: first page", F, same("/api/arrears")),
        ("arrears: status=open", F, same("/api/arrears?status=open")),
        ("arrears: bucket=90+", F, same("/api/arrears?bucket=90%2B")),
        ("arrears: status=open&bucket=31-60", F, same("/api/arrears?status=open&bucket=31-60")),
        ("arrears: account=", F, each("/api/arrears?account={v}", accounts)),
        ("arrears: from/to", F, ["/api/arrears?" + w for w in window()]),
        ("arrears: deep cursor", F, each("/api/arrears?cursor={v}", d["deep_arrears"])),
        ("arrears: limit=500", F, same("/api/arrears?limit=500")),
        ("late-fees: first page", F, same("/api/late-fees")),
        ("late-fees: account=", F, each("/api/late-fees?account={v}", accounts)),
        ("late-fees: deep cursor", F, each("/api/late-fees?cursor={v}", d["deep_fees"])),
        ("suspensions: first page", F, same("/api/suspensions")),
        ("suspensions: status=denied", F, same("/api/suspensions?status=denied")),
        ("suspensions: account=", F, each("/api/suspensions?account={v}", suspended)),
        ("restorations: first page", F, same("/api/restorations")),
        ("restorations: account=", F, each("/api/restorations?account={v}", suspended)),
        ("card-replacements: first page", F, same("/api/card-replacements")),
        ("card-replacements: status=referred", F, same("/api/card-replacements?status=referred")),
        ("card-replacements: outlet=", F, each("/api/card-replacements?outlet={v}", d["outlets"])),
        ("csv: arrears status=open", F, same("/api/arrears?status=open&format=csv")),
        ("csv: disputes from/to", F, ["/api/disputes?format=csv&" + w for w in window()]),
        ("csv: late-fees account=", F, each("/api/late-fees?format=csv&account={v}", accounts)),
        ("dispute trail", A, each("/api/disputes/{v}/trail", tickets)),
        ("account trail: first page", A, each("/api/audit/accounts/{v}", accounts)),
        ("account trail: deep cursor", A, [f"/api/audit/accounts/{quote(a)}?cursor={cursors.encode(None, str(p))}"
                                           for a, p in zip(accounts, d["middles"])]),
        ("account trail: csv", A, each("/api/audit/accounts/{v}?format=csv", accounts)),
        # Fewer: services/finance/trails.py finds a decision's causes by event_id::text, a scan of the log.
        ("decision trail", A, each("/api/audit/decisions/{v}", d["decisions"][:max(10, n // 10)])),
        ("dashboard", F, same("/api/dashboard")),
        ("arrears aging", F, same("/api/arrears/aging")),
        ("reminders by channel", F, same("/api/reminders/by-channel")),
    ]


async def measure(api: Api, plan, warmup: int = 5) -> list[dict]:
    tokens = {role: mint("bench", role, 3600, api.secret, time.time()) for role in ("finance", "auditor")}
    out = []
    async with aiohttp.ClientSession() as session:
        for name, role, urls in plan:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            times, sizes = [], []
            for i, url in enumerate(urls[:warmup] + urls):
                t0 = time.perf_counter()
                async with session.get(api.base + url, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{name}: {url} -> {r.status} {body[:200]!r}")
                elapsed = time.perf_counter() - t0
                if i >= warmup:
                    times.append(elapsed * 1000)
                    sizes.append(len(body))
            p99 = quantile(times, 0.99)
            out.append({"case": name, "requests": len(times), "p50_ms": round(quantile(times, 0.5), 1),
                        "p95_ms": round(quantile(times, 0.95), 1), "p99_ms": round(p99, 1),
                        "max_ms": round(max(times), 1), "mean_kib": round(sum(sizes) / len(sizes) / 1024, 1),
                        "meets_goal": p99 <= GOAL_MS})
            log(f"{name}: p50 {out[-1]['p50_ms']} / p99 {out[-1]['p99_ms']} ms")
    return out


def _rebuild(database_url: str) -> dict:
    """`wuguan projections rebuild`, timed. The rate is the rebuild's own (the command prints it);
    the command also starts Python and computes the checksum, reported beside it."""
    done, seconds = _cli("projections", "rebuild", database_url=database_url)
    line = next((l for l in done.stdout.splitlines() if l.startswith("rebuilt:")), "")
    if not line:
        raise RuntimeError(f"projections rebuild failed: {done.stderr[-500:]}")
    replayed, rebuild_s = rebuilt_counts(line)
    return {"output": line, "checksum": done.stdout.strip().splitlines()[-1],
            "seconds": rebuild_s, "events_per_s": round(replayed / rebuild_s, 1),
            "command_seconds": round(seconds, 2), "command_events_per_s": round(replayed / seconds, 1)}


async def run_queries(server_url: str | None = None, results_tmp: Path | None = None) -> dict:
    """The whole section; `server_url`: any database URL on the server to use (None = embedded)."""
    shape = Shape(events=int(os.environ.get("BENCH_QUERY_EVENTS", "1000000")),
                  accounts=int(os.environ.get("BENCH_QUERY_ACCOUNTS", "3000")),
                  months=int(os.environ.get("BENCH_QUERY_MONTHS", "12")))
    requests = int(os.environ.get("BENCH_QUERY_REQUESTS", "200"))
    tmp = results_tmp or Path(tempfile.mkdtemp(prefix="wuguan-bq-"))
    postgres = None
    if server_url is None:
        postgres = start_postgres(Path(tempfile.mkdtemp(prefix="wgq-", dir="/tmp")))
        server_url = postgres.url()
    result: dict = {"shape": {"events": shape.events, "accounts": shape.accounts, "months": shape.months,
                              "outlets": shape.outlets, "requests_per_case": requests}, "goal_p99_ms": GOAL_MS}
    api = None
    reuse = os.environ.get("BENCH_QUERY_DATABASE")
    try:
        database_url = _with_database(server_url, reuse or f"wuguan_bq_{uuid.uuid4().hex[:8]}")
        if not reuse:
            await create_database(server_url, urlsplit(database_url).path.lstrip("/"))
            log(f"filling a store of {shape.events} decisions ({shape.accounts} accounts, {shape.months} months)")
            result["store"] = await fill_store(database_url, shape)
            log(f"store: {result['store']}")
            if os.environ.get("BENCH_QUERY_VERIFY", "1") not in ("0", ""):
                done, seconds = _cli("verify", database_url=database_url)
                result["verify"] = {"output": done.stdout.strip()[-200:], "ok": done.returncode == 0,
                                    "seconds": round(seconds, 1)}
                log(f"verify: {result['verify']}")
        result["rebuild"] = _rebuild(database_url)
        log(f"rebuild: {result['rebuild']}")
        async with connection(database_url) as conn:
            # the last event in commit order, where the projector's checkpoint ends when caught up
            head = await conn.fetchval("SELECT last_position FROM event_appends ORDER BY tx_id DESC, last_position DESC LIMIT 1")
            result["rows"] = {name: await conn.fetchval(f"SELECT count(*) FROM finance.{name}") for name in (
                "disputes", "credit_notes", "arrears", "reminders", "late_fees", "suspensions", "restorations",
                "card_replacements", "account_decisions", "ticket_decisions", "decision_causes")}
        api = Api(database_url, tmp / "api.log")
        async with aiohttp.ClientSession() as session:
            await api.caught_up(session, head)
        result["cases"] = await measure(api, await cases(database_url, requests))
        met = [c for c in result["cases"] if c["meets_goal"]]
        result["met"] = f"{len(met)}/{len(result['cases'])} cases with p99 <= {GOAL_MS:.0f} ms"
    finally:
        if api is not None:
            api.stop()
        if not reuse and postgres is None and os.environ.get("BENCH_KEEP", "0") in ("0", ""):
            await _drop_database(server_url, urlsplit(database_url).path.lstrip("/"))
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.data_dir, ignore_errors=True)
        if results_tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def table(result: dict) -> str:
    lines = [f"{'case':40} | {'p50 ms':>7} | {'p95 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'KiB':>7} | goal"]
    lines.append("-" * len(lines[0]))
    for c in result.get("cases", ()):
        lines.append(f"{c['case']:40} | {c['p50_ms']:7.1f} | {c['p95_ms']:7.1f} | {c['p99_ms']:7.1f} |"
                     f" {c['max_ms']:7.1f} | {c['mean_kib']:7.1f} | {'met' if c['meets_goal'] else 'NOT met'}")
    store, rebuild = result.get("store", {}), result.get("rebuild", {})
    if store:
        lines.append(f"\nstore: {store.get('events')} events generated and loaded in {store.get('seconds')} s"
                     f" ({store.get('events_per_s')} ev/s); verify: {result.get('verify', {}).get('output')}")
    lines.append(f"projection rebuild: {rebuild.get('events_per_s')} ev/s ({rebuild.get('output')});"
                 f" the command with its checksum: {rebuild.get('command_seconds')} s ="
                 f" {rebuild.get('command_events_per_s')} ev/s")
    lines.append(f"rows: {result.get('rows')}")
    lines.append(f"goal: {result.get('met')}")
    return "\n".join(lines)


def _write(out_path: Path, result: dict) -> None:
    # Merged into the bench's results file under its own key, so `make bench` and this agree.
    current = orjson.loads(out_path.read_bytes()) if out_path.exists() else {}
    current["h_queries"] = result
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(orjson.dumps(current, option=orjson.OPT_INDENT_2))


def main() -> None:
    result = asyncio.run(run_queries(os.environ.get("DATABASE_URL")))
    out_path = Path(os.environ.get("BENCH_OUT", ROOT / "results" / "latest.json"))
    _write(out_path, result)
    print(table(result))
    print(f"\nresults: {out_path} (h_queries)")


if __name__ == "__main__":
    main()
