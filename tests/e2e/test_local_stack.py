"""`wuguan run` (what `make run` calls): decisions within a minute, and Ctrl-C leaves no
process behind."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.common.localstack.embedded import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _children_of(pid: int) -> set[int]:
    found, frontier = set(), {pid}
    while frontier:
        out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
        pairs = [tuple(map(int, line.split())) for line in out.splitlines() if line.strip()]
        frontier = {child for child, parent in pairs if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def _embedded_postgres_pids() -> set[int]:
    # pgserver daemonizes Postgres, so it is no descendant of ours: find it by its data dir.
    out = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split(None, 1)[0]) for line in out.splitlines() if "wgpg-" in line and "postgres" in line}


def test_run_shows_decisions_within_a_minute_and_ctrl_c_stops_everything():
    postgres_before = _embedded_postgres_pids()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env.update({f"WUGUAN_{s}_PORT": str(free_port()) for s in ("BILLING_GUARD", "DUNNING", "CARDS")})
    process = subprocess.Popen(
        [sys.executable, "-m", "services.common.cli", "run", "--accounts", "60"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    started, lines, descendants = time.monotonic(), [], set()
    output: queue.Queue = queue.Queue()
    # A reader thread, so a silent stack fails the test at 60 s instead of blocking it.
    threading.Thread(target=lambda: [output.put(line) for line in process.stdout], daemon=True).start()
    try:
        while time.monotonic() - started < 60:
            try:
                line = output.get(timeout=1)
            except queue.Empty:
                continue
            lines.append(line)
            descendants |= _children_of(process.pid)
            if "dunning.ReminderScheduled" in line:
                break
        assert any("dunning.ReminderScheduled" in l for l in lines), "".join(lines[-40:])
        assert len(descendants) >= 4  # broker and three workers at least
        started_postgres = _embedded_postgres_pids() - postgres_before
        assert started_postgres, "the embedded Postgres did not start"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    time.sleep(1)
    left = [pid for pid in descendants | started_postgres if _alive(pid)]
    assert left == [], "processes left behind: " + "; ".join(
        subprocess.run(["ps", "-ww", "-o", "pid=,args=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        for pid in left
    )
