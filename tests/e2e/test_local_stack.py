"""`wuguan run` (what `make run` calls): decisions within a minute, and Ctrl-C leaves no
process behind."""
from __future__ import annotations

import asyncio
import os
import re
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


def _embedded_postgres_pids(data_dir: str = "wgpg-") -> set[int]:
    # pgserver daemonizes Postgres, so it is no descendant of ours: find it by its data dir.
    out = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split(None, 1)[0]) for line in out.splitlines() if data_dir in line and "postgres" in line}


def _our_postgres(output: str) -> set[int]:
    """The Postgres of this run (others may run beside the test): the data dir in its DATABASE_URL."""
    found = re.search(r"host=(/tmp/wgpg-[\w]+)", output)
    return _embedded_postgres_pids(found.group(1)) if found else set()


# Issue 16: the first hour. `wuguan run` on a terminal and piped into a reader that goes away.

def _stack_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env.update({f"WUGUAN_{s}_PORT": str(free_port()) for s in ("BILLING_GUARD", "DUNNING", "CARDS", "API")})
    return env


def _left_after(descendants: set[int], postgres: set[int], seconds: float) -> list[str]:
    """Processes of the stack still alive `seconds` after the signal, described."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in descendants | postgres):
        time.sleep(0.2)
    return [subprocess.run(["ps", "-ww", "-o", "pid=,args=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
            for pid in descendants | postgres if _alive(pid)]


def _listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP port listens on (from /proc/net/tcp: state 0A is LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _read_into(fd: int, sink: list[str]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        sink.append(chunk.decode(errors="replace"))


def test_run_on_a_terminal_rates_calls_prints_where_things_are_and_a_summary_then_ctrl_c_stops_all_in_10_s():
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 140, 0, 0))
    env = _stack_env()
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "run", "--accounts", "40"],
        env=env, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )
    os.close(slave)
    chunks: list[str] = []
    threading.Thread(target=_read_into, args=(master, chunks), daemon=True).start()
    descendants: set[int] = set()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 150 and "Dead letters by reason" not in "".join(chunks):
            descendants |= _children_of(process.pid)
            assert process.poll() is None, "".join(chunks)[-3000:]
            time.sleep(0.5)
        text = "".join(chunks)
        assert "Dead letters by reason" in text, text[-3000:]
        for shown in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS=", "/#token=", "TOKEN", "api-token", "Ctrl-C"):
            assert shown in text, shown
        assert "guard.CdrRated" in text and "guard.CdrUnrated" not in text  # every call has a tariff
        assert "in arrears" in text and "credited" in text and "CP3.SANITY" in text
        postgres = _our_postgres(text)
        assert len(descendants) >= 5 and postgres  # broker, three workers, API; Postgres
        for name in ("BILLING_GUARD", "DUNNING", "CARDS", "API"):  # metrics and API: loopback only
            assert _listening_addresses(int(env[f"WUGUAN_{name}_PORT"])) == {"127.0.0.1"}, name
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    signalled = time.monotonic()
    left = _left_after(descendants | {process.pid}, postgres, 10)
    assert left == [], "left after 10 s: " + "; ".join(left)
    assert time.monotonic() - signalled <= 10.5
    process.wait(5)
    os.close(master)


def test_run_piped_into_a_reader_that_exits_still_stops_everything_on_ctrl_c():
    import asyncpg

    command = f"{sys.executable} -m services run --accounts 20 | head -5"
    shell = subprocess.Popen(["sh", "-c", command], env=_stack_env(), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    # head prints five lines and exits: from then on the stack writes into a closed pipe
    head = "".join(shell.stdout.readline() for _ in range(5))
    url = next(line.split()[1] for line in head.splitlines() if line.split()[:1] == ["DATABASE_URL"])

    async def disputes_decided() -> int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'guard.DisputeOpened'")
        finally:
            await conn.close()

    descendants: set[int] = set()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 120:
            descendants |= _children_of(shell.pid)
            if asyncio.run(disputes_decided()) >= 2:  # the sample's last wave: the summary follows
                break
            time.sleep(1)
        time.sleep(3)  # the summary is printed into the closed pipe
        postgres = _our_postgres(head)
        assert len(descendants) >= 6 and postgres
    finally:
        os.killpg(shell.pid, signal.SIGINT)
    left = _left_after(descendants | {shell.pid}, postgres, 10)
    assert left == [], "left after 10 s: " + "; ".join(left)
