"""Signed checkpoints made by a real worker process (issue 14): it signs its chains while it
decides, the witness on the broker agrees with the store, one decision's proof checks offline,
a checkpoint topic that refuses it is retried and counted while decisions go on, and a missing
key file stops the worker at start, naming the path."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from services.common.audit.signing import generate
from services.common.db import connect

from .faults import decided_counts, eventually, payments, produce

pytestmark = pytest.mark.e2e


def wuguan(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def metric(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def published(database_url: str) -> int:
    conn = await connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM audit_checkpoints WHERE service = 'dunning' AND published")
    finally:
        await conn.close()


async def decided(database_url: str) -> int:
    return (await decided_counts(database_url)).get("dunning", (0, 0))[0]


@pytest.fixture
def signing_key(tmp_path):
    generate(tmp_path / "signing.pem")
    return tmp_path / "signing.pem"


async def test_a_worker_signs_its_chains_and_the_witness_agrees(workers, database_url, signing_key, tmp_path):
    workers.extra_env = {"WUGUAN_CHECKPOINT_KEY": str(signing_key), "WUGUAN_CHECKPOINT_EVERY_S": "1"}
    workers.start("dunning")
    await workers.wait_healthy("dunning")
    await produce(workers.bootstrap, payments(20))
    await eventually(lambda: decided(database_url), 60, "payments decided")
    first = await eventually(lambda: published(database_url), 30, "a published checkpoint")
    await eventually(lambda: _more(published(database_url), first), 30, "a second checkpoint")
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": workers.bootstrap,
           "WUGUAN_CHECKPOINT_PUBLIC_KEYS": f"{signing_key}.pub", "PATH": "/usr/bin:/bin"}
    verified = wuguan("verify", "--checkpoints", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert re.search(r"OK: \d+ signed checkpoints from audit.checkpoints.v1, \d+ events", verified.stdout)
    conn = await connect(database_url)
    try:
        decision = await conn.fetchval("SELECT event_id::text FROM events WHERE service = 'dunning'"
                                       " ORDER BY global_position LIMIT 1")
    finally:
        await conn.close()
    proof = tmp_path / "proof.json"
    assert wuguan("prove", decision, "--out", str(proof), env=env).returncode == 0
    checked = wuguan("check-proof", str(proof), "--public-key", f"{signing_key}.pub", env={"PATH": "/usr/bin:/bin"})
    assert checked.returncode == 0 and f"VALID: decision {decision}" in checked.stdout, checked.stdout
    assert metric(workers.metrics("dunning"), "wuguan_checkpoints_enabled", service="dunning") == 1


async def _more(count, than: int) -> bool:
    return await count > than


async def test_a_refusing_checkpoint_topic_is_retried_and_decisions_go_on(workers, database_url, signing_key):
    # A topic name the broker refuses: every publish fails, as with a topic that cannot be reached.
    workers.extra_env = {"WUGUAN_CHECKPOINT_KEY": str(signing_key), "WUGUAN_CHECKPOINT_EVERY_S": "1",
                         "WUGUAN_CHECKPOINT_TOPIC": "audit checkpoints!"}
    workers.start("dunning")
    await workers.wait_healthy("dunning")
    await produce(workers.bootstrap, payments(10))
    await eventually(lambda: _at_least(decided(database_url), 10), 60, "the first payments decided")

    async def failures_counted():
        return metric(workers.metrics("dunning"), "wuguan_checkpoint_failures_total", service="dunning",
                      stage="publish") >= 2
    await eventually(failures_counted, 60, "publish failures counted")
    await produce(workers.bootstrap, payments(10))
    await eventually(lambda: _at_least(decided(database_url), 20), 60, "payments decided while publishing fails")
    assert await published(database_url) == 0
    assert workers.health("dunning") == 200


async def _at_least(count, n: int) -> bool:
    return await count >= n


def test_a_missing_key_file_stops_the_worker_naming_the_path(tmp_path):
    result = subprocess.run([sys.executable, "-m", "services", "worker", "cards"],
                            env={"WUGUAN_CHECKPOINT_KEY": str(tmp_path / "absent.pem"), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"WUGUAN_CHECKPOINT_KEY: cannot read the checkpoint signing key '{tmp_path}/absent.pem'" in result.stderr
