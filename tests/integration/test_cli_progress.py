"""Issue 16: long commands (rebuild, verify, replay, sample) show progress on a terminal and
nothing when piped. `projections rebuild` and `verify` against a real, migrated Postgres, on a
pty and piped."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from .test_cli import ROOT, wuguan

pytestmark = pytest.mark.integration


def _on_a_terminal(*args: str, **env: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "services", *args], env={**os.environ, **env},
                               cwd=ROOT, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk.decode(errors="replace"))
    os.close(master)
    return process.wait(60), "".join(chunks)


def test_rebuild_and_verify_show_progress_on_a_terminal_only(database_url):
    assert wuguan("migrate", DATABASE_URL=database_url).returncode == 0
    for command, shown in ((("projections", "rebuild"), "rebuilding the finance projections"),
                           (("verify",), "walking the hash chain")):
        code, text = _on_a_terminal(*command, DATABASE_URL=database_url)
        assert code == 0 and shown in text, text
        piped = wuguan(*command, DATABASE_URL=database_url)
        assert piped.returncode == 0 and shown not in piped.stdout + piped.stderr
