"""Starting `wuguan api` from `wuguan run`: a development secret when none is configured, and a
dashboard URL with a short-lived token in its fragment (fragments never reach the server's logs)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .tokens import mint

# Only ever used by `wuguan run` on a developer's machine; `wuguan api` alone has no default.
DEV_SECRET = "wuguan-local-development-secret-not-for-production"


def spawn_api(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Returns the process and the dashboard URL (with an auditor token valid for 12 hours)."""
    secret = os.environ.get("WUGUAN_API_SECRET") or DEV_SECRET
    port = os.environ.get("WUGUAN_API_PORT") or "8110"
    host = os.environ.get("WUGUAN_WEB_HOST") or "127.0.0.1"
    out = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "api"],
        env={**os.environ, **env, "WUGUAN_API_SECRET": secret},
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    # auditor: the dashboard's drill-down reaches the audit trails (an account's decisions, a
    # charge's story); every role only reads.
    token = mint("wuguan-run", "auditor", 12 * 3600, secret, time.time())
    return process, f"http://{host}:{port}/#token={token}"
