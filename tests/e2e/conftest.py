"""End-to-end: the workers run as real subprocesses against a real broker and Postgres."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from services.common.db import connect
from services.common.eventstore.migrate import migrate
from services.common.localstack.embedded import EmbeddedBroker, free_port, start_broker
from services.common.localstack.processes import spawn_worker, stop_processes
from services.common.localstack.topics import create_topics
from services.composition import SERVICES

PARTITIONS = 3


class RestartableBroker:
    """The test's embedded broker, which a fault test may stop and start again on its port."""

    def __init__(self):
        self.broker: EmbeddedBroker = start_broker()

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def stop(self) -> None:
        self.broker.stop()

    def start_again(self) -> None:
        self.broker = start_broker(port=self.broker.port)


@pytest.fixture
def e2e_broker():
    """A broker of the test's own: consumer-group offsets and topics start empty."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.fail("e2e tests start their own broker per test; unset KAFKA_BOOTSTRAP_SERVERS")
    broker = RestartableBroker()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def e2e_bootstrap(e2e_broker):
    return e2e_broker.bootstrap


class Workers:
    def __init__(self, bootstrap: str, database_url: str, log_dir: Path, timer_clock: str = "wall"):
        self.timer_clock = timer_clock
        self.timer_interval_ms = 200
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.log_dir = log_dir
        self.ports = {service: free_port() for service in SERVICES}
        self.processes: dict[str, subprocess.Popen] = {}
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "WUGUAN_PARTITIONS": str(PARTITIONS),
            "WUGUAN_FAST_GROUP_JOIN": "true",
            "WUGUAN_TIMER_INTERVAL_MS": str(self.timer_interval_ms),
            # the platform tests publish bills due days ago and expect their due dates to
            # have passed; the simulation drives business time itself
            "WUGUAN_TIMER_CLOCK": self.timer_clock,
        }
        env.update({f"WUGUAN_{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        env.update(self.extra_env)
        return env

    def start(self, service: str) -> None:
        self.processes[service] = spawn_worker(service, self.env(), self.log_dir / f"{service}.log")

    def kill(self, service: str) -> None:
        process = self.processes.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def health(self, service: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}/healthz", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as exc:  # 503: up, but not ready
            return exc.code
        except Exception:
            return 0

    def metrics(self, service: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}/metrics", timeout=5) as r:
            return r.read().decode()

    async def wait_healthy(self, service: str, timeout_s: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            process = self.processes[service]
            if process.poll() is not None:
                raise AssertionError(f"{service} exited {process.returncode}: {self.log(service)[-3000:]}")
            if await asyncio.to_thread(self.health, service) == 200:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"{service} not healthy after {timeout_s}s: {self.log(service)[-3000:]}")

    def log(self, service: str) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        stop_processes(list(self.processes.values()))
        self.processes.clear()


@asynccontextmanager
async def workers_on(bootstrap: str, database_url: str, log_dir: Path):
    """Workers against a migrated database and a broker with every topic; stopped on exit."""
    conn = await connect(database_url)
    await migrate(conn)
    await conn.close()
    await create_topics(bootstrap, PARTITIONS)
    running = Workers(bootstrap, database_url, log_dir)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def workers(e2e_bootstrap, database_url, tmp_path):
    async with workers_on(e2e_bootstrap, database_url, tmp_path) as running:
        yield running
