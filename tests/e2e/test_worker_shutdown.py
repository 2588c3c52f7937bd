"""Issue 16: every worker exits on SIGTERM within the drain time `wuguan run` gives it
(stack.WORKERS_S), with inputs in flight, and leaves no process behind."""
from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.common.localstack.publish import publish
from services.common.localstack.sample_day import sample_day
from services.common.localstack.stack import WORKERS_S
from services.composition import SERVICES

pytestmark = pytest.mark.e2e


async def test_each_worker_exits_on_sigterm_within_its_drain_time_while_busy(workers):
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)
    waves = sample_day(datetime.now(ZoneInfo("Asia/Shanghai")).date(), accounts=150)
    await publish(workers.bootstrap, [m for wave in waves for m in wave])  # all at once: busy workers
    await asyncio.sleep(0.5)
    stopped = {}
    for service, process in workers.processes.items():
        assert process.poll() is None, workers.log(service)[-2000:]
        process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    while len(stopped) < len(workers.processes) and time.monotonic() - started < WORKERS_S:
        for service, process in workers.processes.items():
            if service not in stopped and process.poll() is not None:
                stopped[service] = (process.returncode, round(time.monotonic() - started, 1))
        await asyncio.sleep(0.1)
    assert sorted(stopped) == sorted(SERVICES), f"still running after {WORKERS_S} s: {set(SERVICES) - set(stopped)}"
    assert all(code == 0 for code, _ in stopped.values()), stopped
