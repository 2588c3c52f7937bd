"""`wuguan run`: the whole system on one machine with one command.

Starts the embedded broker and Postgres unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL say
otherwise, migrates, creates topics, starts the registry's workers and the finance API (the
composition root passes both in), prints where everything is, feeds a sample day with a live progress line and prints a summary when it is
decided. Ctrl-C (or SIGTERM) stops the workers first (they drain), then the broker and Postgres,
within 10 s, also when standard output is a closed pipe.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.registry import DECISION_TOPICS

from ..audit.signing import generate as generate_signing_key
from ..config import Settings
from ..db import connect, connection
from ..eventstore.migrate import migrate
from ..service_registry import ServiceRegistry
from .connection import Connection, render_connection, token_command, token_of
from .console import pipe_safe_console
from .embedded import create_database, start_broker, start_postgres
from .processes import spawn_worker, stop_processes
from .progress import SampleProgress, api_money, poll_counts, show_progress
from .sample_day import publish_sample_day, wait_until_quiet
from .summary import read_summary, render_summary
from .topics import create_topics

# Ctrl-C to no process left: workers and API drain within WORKERS_S, then the broker and
# Postgres stop; the rest of the 10 s is for Postgres' fast shutdown.
WORKERS_S = 6.0
BROKER_S = 2.0


def describe(decision: dict) -> str:
    body = decision.get("payload", {})
    details = " ".join(
        f"{k}={body[k]}" for k in ("accountId", "billId", "offenceCount", "channel", "voiceAllowed") if k in body
    )
    return f"[{decision['service']}] {decision['decisionType']} {decision['outcome']} rules={','.join(decision['ruleIds'])} {details}"


async def tail_decisions(bootstrap: str, console) -> None:
    """`--follow`: every decision as it is published."""
    consumer = AIOKafkaConsumer(
        *DECISION_TOPICS.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    console.print(describe(orjson.loads(record.value)), markup=False)
    finally:
        await consumer.stop()


@dataclass
class Stack:
    """What `wuguan run` started, so a stop at any point stops exactly that, in order."""

    run_dir: Path
    broker: object = None
    postgres: object = None
    processes: list = field(default_factory=list)  # workers, then the API

    def stop(self) -> str:
        """Stops in order; returns how long each step took."""
        steps, started = [], time.monotonic()
        for name, step in (("workers and API", lambda: stop_processes(self.processes, timeout_s=WORKERS_S)),
                           ("broker", self.broker and (lambda: self.broker.stop(timeout_s=BROKER_S))),
                           ("Postgres", self.postgres and self.postgres.stop)):
            if step:
                step()
                steps.append(f"{name} {time.monotonic() - started:.1f} s")
                started = time.monotonic()
        return ", ".join(steps)


async def _infrastructure(stack: Stack, settings: Settings, env: dict) -> tuple[str, str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap = settings.kafka_bootstrap_servers
    else:
        stack.broker = start_broker(log_path=stack.run_dir / "broker.log")
        bootstrap = stack.broker.bootstrap
        env["WUGUAN_FAST_GROUP_JOIN"] = "true"
    if os.environ.get("DATABASE_URL"):
        database_url = settings.database_url
    else:
        stack.postgres = start_postgres()
        await create_database(stack.postgres.url(), "wuguan")
        database_url = stack.postgres.url("wuguan")
    async with connection(database_url) as conn:
        await migrate(conn)
    await create_topics(bootstrap, settings.partitions)
    return bootstrap, database_url


def _start_processes(stack: Stack, registry: ServiceRegistry, settings: Settings, env: dict, bootstrap: str,
                     database_url: str) -> Connection:
    for service in registry.names:
        stack.processes.append(spawn_worker(service, env, stack.run_dir / f"{service}.log"))
    # the finance read API, its projector and the dashboard
    api, dashboard_url = registry.read_side.start_api(env, stack.run_dir / "api.log")
    stack.processes.append(api)
    base = dashboard_url.partition("#")[0]
    host = settings.web_host
    return Connection(
        database_url=database_url, bootstrap=bootstrap, api_url=f"{base}api/", dashboard_url=dashboard_url,
        token=token_of(dashboard_url),
        token_command=token_command(
            None if os.environ.get("WUGUAN_API_SECRET") else registry.read_side.development_secret()),
        metrics_urls=tuple(f"http://{host}:{settings.web_ports[s]}/metrics" for s in registry.names),
        log_dir=stack.run_dir, checkpoint_key=env.get("WUGUAN_CHECKPOINT_KEY", ""),
    )


async def _sample_and_summary(console, connection: Connection, accounts: int, quiet: bool) -> None:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    progress = SampleProgress(waves=3)
    conn = await connect(connection.database_url)
    helpers = [asyncio.create_task(poll_counts(conn, progress))]
    if not quiet:
        helpers.append(asyncio.create_task(show_progress(console, progress)))
    started = time.monotonic()

    async def settled() -> None:
        await wait_until_quiet(connection.database_url)
        if not quiet and not console.is_terminal:
            console.print(progress.line())
        progress.wave += 1

    try:
        try:
            progress.wave = 1
            sent = await publish_sample_day(connection.bootstrap, today, accounts, settled=settled)
            await settled()
            progress.done = True
            money = await api_money(connection.api_url, connection.token)
        finally:
            await _stop(helpers)
        # Only now: the progress poller read on this connection, and asyncpg runs one query at a time.
        summary = await read_summary(conn, money)
    finally:
        await conn.close()
    console.print(f"sample day decided: {sent} events for {accounts} accounts in {time.monotonic() - started:.1f} s")
    console.print(render_summary(summary))
    console.print("still running: the dashboard and API stay up; Ctrl-C stops everything.")


async def _stop(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def checkpoint_key(run_dir: Path) -> Path:
    """The key the workers sign checkpoints with: the configured one, or a new one for this run."""
    configured = os.environ.get("WUGUAN_CHECKPOINT_KEY")
    if configured:
        return Path(configured)
    path = run_dir / "checkpoint-signing.pem"
    generate_signing_key(path)
    return path


def _report_failure(console, task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        console.print(f"the sample day failed: {type(task.exception()).__name__}: {task.exception()}", markup=False)


async def _watch(stack: Stack, names: list[str], console, stop: asyncio.Event) -> None:
    """`names`: of stack.processes, in order (the log of each is <name>.log)."""
    while not stop.is_set():
        for process, name in zip(stack.processes, names):
            if process.poll() is not None:
                console.print(f"{name} exited with code {process.returncode}; see {stack.run_dir}/{name}.log")
                stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def run_stack(registry: ServiceRegistry, feed_sample: bool, accounts: int, quiet: bool = False,
                    follow: bool = False) -> None:
    settings = Settings.from_env(web_ports=registry.web_ports)
    console = pipe_safe_console()
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its INFO lines quote every pg_ctl run
    stack = Stack(Path(tempfile.mkdtemp(prefix="wuguan-run-")))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task] = []
    try:
        env = {"WUGUAN_LOG_LEVEL": settings.log_level}
        bootstrap, database_url = await _infrastructure(stack, settings, env)
        env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url)
        env.update(WUGUAN_CHECKPOINT_KEY=str(checkpoint_key(stack.run_dir)))
        connection = _start_processes(stack, registry, settings, env, bootstrap, database_url)
        console.print(render_connection(connection))
        if follow:
            tasks.append(asyncio.create_task(tail_decisions(bootstrap, console)))
        if feed_sample:
            feed = asyncio.create_task(_sample_and_summary(console, connection, accounts, quiet))
            feed.add_done_callback(lambda task: _report_failure(console, task))
            tasks.append(feed)
        await _watch(stack, [*registry.names, "api"], console, stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        console.print("stopping: workers and API first, then the broker and Postgres…")
        started = time.monotonic()
        steps = stack.stop()
        console.print(f"stopped in {time.monotonic() - started:.1f} s ({steps})")
