"""Generated hostile input on every topic, through the three running workers (issue 19).

tests/hostile_inputs.py derives the cases from the published JSON Schemas; valid events are
interleaved with them. The contract is checked first, in process: each case's verdict
(schemas.validation.decode_message) must be one the mutation allows. Then every case goes
through the real broker to the workers, and:
- each refused case has exactly one dead letter per consuming service, with the contract's
  code, on `<topic>.dlq` and in dead_lettered_inputs;
- each accepted case is decided (processed, or refused by a service rule with its own code);
- no worker crashes or restarts, no service goes 5 s without progress while inputs remain,
  and `wuguan verify` passes afterwards.

CI runs WUGUAN_FUZZ_CASES=200 per topic; `make fuzz` runs 20,000 in all.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.registry import INPUT_TOPICS, dlq_topic
from schemas.errors import ERROR_CODES, PROCESSING_ERROR, InvalidEvent
from schemas.validation import decode_message
from services.common.db import connect
from services.composition import SERVICES

from ..hostile_inputs import VALID, cases
from ..kafka_helpers import read_topic
from .test_fuzz_inputs import CONSUMERS

pytestmark = pytest.mark.e2e

CASES_PER_TOPIC = int(os.environ.get("WUGUAN_FUZZ_CASES", "200"))
MAX_EVENT_BYTES = 256 * 1024  # the workers' limit in this run: size cases stay light on the broker
STALL_LIMIT_S = 5.0


def verdict(case) -> str:
    try:
        decode_message(case.topic, case.key, case.value, MAX_EVENT_BYTES)
    except InvalidEvent as exc:
        return exc.code
    return VALID


async def produce_all(bootstrap: str, plan) -> list[tuple]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                max_request_size=2 * 1024 * 1024, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(c.topic, key=c.key, value=c.value) for c, _ in plan]
        return [(case, code, (await f).partition, (await f).offset) for (case, code), f in zip(plan, futures)]
    finally:
        await producer.stop()


async def outcome(database_url: str):
    conn = await connect(database_url)
    try:
        processed = {tuple(r) for r in await conn.fetch('SELECT consumer, topic, partition, "offset" FROM processed_inputs')}
        # one row per refused input at most (its primary key); how many letters reached Kafka
        # is counted on the .dlq topics below
        codes = {(r["consumer"], r["topic"], r["partition"], r["offset"]): r["code"] for r in await conn.fetch(
            'SELECT consumer, topic, partition, "offset", code FROM dead_lettered_inputs')}
    finally:
        await conn.close()
    return processed, codes


async def wait_until_handled(database_url: str, expected: dict):
    """Poll until every delivery is decided or dead-lettered; also the longest time in which
    nothing more was handled while some remained."""
    loop = asyncio.get_running_loop()
    last_progress, last_done, longest_stall = loop.time(), -1, 0.0
    deadline = loop.time() + 120 + len(expected) / 50
    while True:
        processed, codes = await outcome(database_url)
        done = sum(1 for at in expected if at in processed or at in codes)
        now = loop.time()
        if done != last_done:
            last_progress, last_done = now, done
        longest_stall = max(longest_stall, now - last_progress)
        if done == len(expected) or now > deadline:
            return processed, codes, longest_stall
        await asyncio.sleep(0.25)


async def letters_on_kafka(bootstrap: str, wanted: set, timeout_s: float = 30) -> Counter:
    """How many letters each refused input has on the .dlq topics, once all wanted are there."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = Counter()
        for topic in INPUT_TOPICS:
            for record in await read_topic(bootstrap, dlq_topic(topic), timeout_s=30):
                letter = orjson.loads(record.value)
                found[(letter["consumer"], letter["originalTopic"], letter["partition"], letter["offset"])] += 1
        if wanted <= set(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


async def test_generated_hostile_inputs_on_every_topic_are_refused_or_decided_and_nothing_stalls(workers):
    started = time.perf_counter()
    plan = [(case, verdict(case)) for topic in INPUT_TOPICS for case in cases(topic, CASES_PER_TOPIC, MAX_EVENT_BYTES)]
    generated_s = time.perf_counter() - started
    disallowed = Counter((c.topic, c.label, code) for c, code in plan if code not in c.allowed)
    assert not disallowed, f"the contract's verdict is not one the mutation allows: {disallowed.most_common(10)}"
    per_topic = Counter(c.topic for c, _ in plan if c.label != "valid")
    assert min(per_topic[t] for t in INPUT_TOPICS) >= min(CASES_PER_TOPIC, 200), per_topic

    workers.extra_env["WUGUAN_MAX_EVENT_BYTES"] = str(MAX_EVENT_BYTES)
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)
    pids = {s: workers.processes[s].pid for s in SERVICES}

    sent = await produce_all(workers.bootstrap, plan)
    expected = {}  # (consumer, topic, partition, offset) -> the contract's code, or VALID
    for case, code, partition, offset in sent:
        for consumer in CONSUMERS[case.topic]:
            expected[(consumer, case.topic, partition, offset)] = code

    processed, codes, longest_stall = await wait_until_handled(workers.database_url, expected)
    drained_s = time.perf_counter() - started

    missing = [at for at in expected if at not in processed and at not in codes]
    assert not missing, f"{len(missing)} of {len(expected)} inputs neither decided nor dead-lettered: {missing[:10]}"
    assert longest_stall <= STALL_LIMIT_S, f"no input was handled for {longest_stall:.1f} s"
    wrong = [(at, code, codes.get(at)) for at, code in expected.items() if code != VALID and codes.get(at) != code]
    assert not wrong, f"dead letters missing or with another code (at, expected, got): {wrong[:10]}"
    crashed = [(at, codes[at]) for at, code in expected.items()
               if code == VALID and at in codes and (codes[at] in ERROR_CODES or codes[at] == PROCESSING_ERROR)]
    assert not crashed, f"valid inputs refused as if malformed or as a defect: {crashed[:10]}"

    refused = {at for at, code in expected.items() if code != VALID}
    on_kafka = await letters_on_kafka(workers.bootstrap, refused)
    assert refused <= set(on_kafka), f"{len(refused - set(on_kafka))} dead letters not on their .dlq topics"
    assert not [at for at in refused if on_kafka[at] != 1], "a refused input has more than one letter"
    assert not [at for at in refused if at in processed], "an input both decided and dead-lettered"

    for service, pid in pids.items():
        assert workers.processes[service].pid == pid and workers.processes[service].poll() is None
        assert "Crashed" not in workers.log(service), workers.log(service)[-2000:]
    verify = subprocess.run([sys.executable, "-m", "services", "verify"], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": workers.database_url}, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(f"\ngenerated inputs: {len(plan)} records ({sum(per_topic.values())} hostile, "
          f"{len(plan) - sum(per_topic.values())} valid) on {len(INPUT_TOPICS)} topics, {len(expected)} deliveries;"
          f" generated in {generated_s:.1f} s, all handled {drained_s - generated_s:.1f} s later;"
          f" longest pause {longest_stall:.1f} s; {len(refused)} dead letters, each once")
