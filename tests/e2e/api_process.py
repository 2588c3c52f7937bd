"""`wuguan api` as a subprocess for the e2e tests (the dashboard and the self-check page)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.common.localstack.embedded import free_port

SECRET = "e2e-secret-0123456789abcdef-0123456789"


def spawn_api(database_url: str, log_path: Path, **extra_env: str) -> tuple[subprocess.Popen, str, object]:
    """The process, its base URL and its open log file (close it after stopping the process)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WUGUAN_API_PORT": str(port), "WUGUAN_API_SECRET": SECRET,
           "WUGUAN_WEB_HOST": "127.0.0.1", **extra_env}
    log = open(log_path, "ab")
    process = subprocess.Popen([sys.executable, "-m", "services", "api"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return process, f"http://127.0.0.1:{port}", log
