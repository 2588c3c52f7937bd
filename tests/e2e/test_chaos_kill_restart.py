"""Chaos, CI size: kill -9 a random worker five times and restart Postgres once while ~8k
inputs stream in; the end state must equal an undisturbed run of the same inputs (decisions
with their ids, streams, versions and payloads; processed inputs; pending timers; business
clocks; every stored decision published). `make chaos` runs the same with 100k inputs."""
from __future__ import annotations

import os

import pytest

from bench.chaos import build_inputs, compare, run, summary

pytestmark = pytest.mark.e2e


async def test_kill_9_and_postgres_restart_change_nothing(tmp_path):
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.fail("the chaos test starts (and restarts) its own broker and Postgres; unset KAFKA_BOOTSTRAP_SERVERS")
    events, kills, seed = 8000, 5, 11
    inputs = build_inputs(events, seed)
    calm = await run(inputs, chaos=False, kills=0, seed=seed, tmp=tmp_path)
    chaotic = await run(inputs, chaos=True, kills=kills, seed=seed, tmp=tmp_path, interval_s=5.0)
    print(summary(calm, chaotic, len(inputs)))
    assert chaotic.kills == kills and chaotic.postgres_restarts == 1
    assert len(calm.decisions) > events  # CDRs yield two decisions each, bills three or more
    assert compare(calm, chaotic) == []
