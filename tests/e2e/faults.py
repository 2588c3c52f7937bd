"""Helpers of the end-to-end fault tests (CONTRACT.NOTHING_LOST): produce inputs, wait for an
outcome, read a worker group's committed offsets without joining it, and check that a worker
held its inputs while a fault lasted and recovered in the same process."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.db import connect
from services.common.topic_reader import consumer_group

from ..integration.guard_inputs import payment, uid
from .conftest import PARTITIONS

PAYMENTS = "billing.payment.v1"
PAYMENT_READERS = ("billing_guard", "dunning")  # both services decide every payment
NOW = datetime.now(timezone.utc).replace(microsecond=0)


async def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def payments(n: int) -> list[tuple[str, bytes, bytes]]:
    """n valid payments, each of its own account, so they spread over every partition."""
    made = []
    for i in range(n):
        account = uid("A")
        topic, value = payment(account, uid("P"), NOW - timedelta(minutes=i), 1000 + i)
        made.append((topic, account.encode(), value))
    return made


async def eventually(check, timeout_s: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def committed_offsets(bootstrap: str, service: str, topic: str = PAYMENTS) -> dict[int, int]:
    """The offsets the worker group `wuguan-<service>` committed for `topic`, read with an admin
    client's OffsetFetch: it never joins the group, so reading cannot trigger a rebalance."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            consumer_group(service), partitions=[TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def decided_counts(database_url: str, topic: str = PAYMENTS) -> dict[str, tuple[int, int]]:
    """Per service: (inputs of `topic` recorded as processed, distinct event ids among them)."""
    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT consumer, count(*) AS n, count(DISTINCT event_id) AS ids"
                                " FROM processed_inputs WHERE topic = $1 GROUP BY consumer", topic)
    finally:
        await conn.close()
    return {r["consumer"]: (r["n"], r["ids"]) for r in rows}


async def all_decided_once(database_url: str, n: int, services=PAYMENT_READERS) -> bool:
    return await decided_counts(database_url) == {s: (n, n) for s in services}


async def dead_letter_count(database_url: str) -> int:
    conn = await connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM dead_lettered_inputs")
    finally:
        await conn.close()


def store_blocked(workers, service: str) -> bool:
    return 'wuguan_store_blocked{service="%s"} 1.0' % service in workers.metrics(service)


async def assert_held_while_refused(workers, services, offsets_before: dict, what: str) -> None:
    """While the database refuses writes: every worker reports blocked (metric and /healthz 503)
    and no committed offset moves, over several commit intervals (broker_commit_interval 1 s)."""
    async def all_blocked():
        return all(await asyncio.gather(*(asyncio.to_thread(store_blocked, workers, s) for s in services)))
    await eventually(all_blocked, 60, f"every worker to report {what}")
    for _ in range(3):
        assert [await asyncio.to_thread(workers.health, s) for s in services] == [503] * len(services)
        assert {s: await committed_offsets(workers.bootstrap, s) for s in services} == offsets_before
        await asyncio.sleep(1.0)


async def wait_healthy_again(workers, services, timeout_s: float = 30) -> None:
    async def healthy():
        return all([await asyncio.to_thread(workers.health, s) == 200 for s in services])
    await eventually(healthy, timeout_s, "the workers to report healthy again")


def assert_never_restarted(workers, service: str, pid: int) -> None:
    assert workers.processes[service].pid == pid and workers.processes[service].poll() is None
    log = workers.log(service)
    assert "Crashed" not in log and "Traceback" not in log, log[-3000:]


async def start_healthy(workers, services=PAYMENT_READERS) -> dict[str, int]:
    for service in services:
        workers.start(service)
    for service in services:
        await workers.wait_healthy(service)
    return {s: workers.processes[s].pid for s in services}
