"""`wuguan run`: the whole system on one machine with one command.

Starts the embedded broker and Postgres unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL say
otherwise, migrates, creates topics, starts the three workers, feeds a sample day, and
prints decisions as they are published. Ctrl-C stops everything.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.registry import DECISION_TOPICS

from ..audit.signing import generate as generate_signing_key
from ..audit.signing import key_id as signing_key_id
from ..config import SERVICES, Settings
from ..db import connect
from ..eventstore.migrate import migrate
from .embedded import create_database, start_broker, start_postgres
from .processes import spawn_worker, stop_processes
from .sample_day import publish_sample_day, wait_until_quiet
from .topics import create_topics


def describe(decision: dict) -> str:
    body = decision.get("payload", {})
    details = " ".join(
        f"{k}={body[k]}" for k in ("accountId", "billId", "offenceCount", "channel", "voiceAllowed") if k in body
    )
    return f"[{decision['service']}] {decision['decisionType']} {decision['outcome']} rules={','.join(decision['ruleIds'])} {details}"


async def tail_decisions(bootstrap: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        *DECISION_TOPICS.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    print(describe(orjson.loads(record.value)), flush=True)
    finally:
        await consumer.stop()


async def _feed(bootstrap: str, database_url: str, accounts: int) -> None:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    sent = await publish_sample_day(bootstrap, today, accounts, settled=lambda: wait_until_quiet(database_url))
    print(f"published a sample day: {sent} events for {accounts} accounts", flush=True)


def checkpoint_key(run_dir: Path) -> Path:
    """The key the workers sign checkpoints with: the configured one, or a new one for this run."""
    configured = os.environ.get("WUGUAN_CHECKPOINT_KEY")
    if configured:
        return Path(configured)
    path = run_dir / "checkpoint-signing.pem"
    public = generate_signing_key(path)
    print(f"checkpoints signed with key {signing_key_id(public)}; public key {path}.pub", flush=True)
    return path


async def run_stack(feed_sample: bool, accounts: int) -> None:
    settings = Settings.from_env()
    run_dir = Path(tempfile.mkdtemp(prefix="wuguan-run-"))
    broker = postgres = None
    workers = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        env = {"WUGUAN_LOG_LEVEL": settings.log_level}
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            bootstrap = settings.kafka_bootstrap_servers
        else:
            broker = start_broker(log_path=run_dir / "broker.log")
            bootstrap = broker.bootstrap
            env["WUGUAN_FAST_GROUP_JOIN"] = "true"
        if os.environ.get("DATABASE_URL"):
            database_url = settings.database_url
        else:
            postgres = start_postgres()
            await create_database(postgres.url(), "wuguan")
            database_url = postgres.url("wuguan")
        env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url)
        env.update(WUGUAN_CHECKPOINT_KEY=str(checkpoint_key(run_dir)))
        conn = await connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        await create_topics(bootstrap, settings.partitions)
        print(f"broker {bootstrap}; database ready; logs in {run_dir}", flush=True)
        for service in SERVICES:
            workers.append(spawn_worker(service, env, run_dir / f"{service}.log"))
            port = settings.web_ports[service]
            print(f"worker {service}: http://{settings.web_host}:{port}/metrics  /healthz", flush=True)
        from services.finance.process import spawn_api  # finance read API, projector and dashboard

        api, dashboard_url = spawn_api(env, run_dir / "api.log")
        workers.append(api)  # stopped with the workers (the health loop below zips SERVICES only)
        print(f"finance dashboard: {dashboard_url}", flush=True)
        tail = asyncio.create_task(tail_decisions(bootstrap, stop))
        feed = asyncio.create_task(_feed(bootstrap, database_url, accounts)) if feed_sample else None
        while not stop.is_set():
            for process, service in zip(workers, SERVICES):
                if process.poll() is not None:
                    print(f"worker {service} exited with code {process.returncode}; see {run_dir}/{service}.log")
                    stop.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        for task in (feed, tail):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    finally:
        print("stopping…", flush=True)
        stop_processes(workers)
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
