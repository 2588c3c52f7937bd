"""Starts worker processes and stops them, leaving nothing behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def spawn_worker(service: str, env: dict, log_path: Path | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen(
        [sys.executable, "-m", "services", "worker", service],
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the supervisor, which stops workers in order
    )


def stop_processes(processes: list[subprocess.Popen], timeout_s: float = 15) -> None:
    """SIGTERM to all at once, then one shared deadline (not one per process): whatever still
    runs after `timeout_s` is killed, so stopping N processes never takes N x the timeout."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
