"""Issue 19's two losses, reproduced against the real workers, broker and Postgres, and shown
closed (CONTRACT.NOTHING_LOST, CONTRACT.DLQ_FITS):

- INSERT revoked from the services' role while 20 payments arrive: the workers hold them,
  report themselves blocked, and after the GRANT decide each one exactly once;
- a 900 KB event of quote characters (its escaped dead letter would be 1.8 MB) and a 2 MB
  event, each followed by a valid CDR on the same partition: one dead letter each, naming
  billing_guard, both CDRs decided, and the worker never restarts.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.common.db import connect

from ..integration.guard_inputs import cdr, payment, uid
from ..kafka_helpers import read_topic

pytestmark = pytest.mark.e2e

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


async def eventually(check, timeout_s: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def assert_never_restarted(workers, service: str, pid: int) -> None:
    assert workers.processes[service].pid == pid and workers.processes[service].poll() is None
    log = workers.log(service)
    assert "Crashed" not in log and "Traceback" not in log, log[-3000:]


async def test_NOTHING_LOST_insert_revoked_then_granted_decides_every_payment_once(workers, database_url):
    for service in ("billing_guard", "dunning"):
        workers.start(service)
    for service in ("billing_guard", "dunning"):
        await workers.wait_healthy(service)
    pids = {s: workers.processes[s].pid for s in ("billing_guard", "dunning")}
    admin = await connect(database_url)
    try:
        await admin.execute("REVOKE INSERT ON events FROM wuguan_service")
        payments = []
        for n in range(20):
            account = uid("A")
            topic, value = payment(account, uid("P"), NOW - timedelta(minutes=n), 1000 + n)
            payments.append((topic, account.encode(), value))
        await produce(workers.bootstrap, payments)

        async def both_blocked():
            return all('wuguan_store_blocked{service="%s"} 1.0' % s in workers.metrics(s) for s in pids)
        await eventually(both_blocked, 60, "both workers to report the refused writes")
        assert all(workers.health(s) != 200 for s in pids)  # /healthz answers 503: not ready
        await asyncio.sleep(3)  # several offset-commit intervals pass while blocked
        assert await admin.fetchval("SELECT count(*) FROM processed_inputs") == 0
        await admin.execute("GRANT INSERT ON events TO wuguan_service")

        async def all_decided():
            rows = await admin.fetch("SELECT consumer, count(*) AS n FROM processed_inputs"
                                     " WHERE topic = 'billing.payment.v1' GROUP BY consumer")
            return {r["consumer"]: r["n"] for r in rows} == {"billing_guard": 20, "dunning": 20}
        await eventually(all_decided, 60, "every payment to be decided by both services")
        assert await admin.fetchval("SELECT count(*) FROM dead_lettered_inputs") == 0
        await eventually(lambda: asyncio.to_thread(lambda: all(workers.health(s) == 200 for s in pids)), 30,
                         "the workers to report healthy again")
    finally:
        await admin.execute("GRANT INSERT ON events TO wuguan_service")
        await admin.close()
    for service, pid in pids.items():
        assert_never_restarted(workers, service, pid)


async def test_CONTRACT_DLQ_FITS_oversized_events_get_one_letter_each_and_the_partition_flows(workers, database_url):
    workers.start("billing_guard")
    await workers.wait_healthy("billing_guard")
    pid = workers.processes["billing_guard"].pid
    account, switch = uid("A"), uid("SW")
    key = account.encode()
    quotes = b'"' * 900_506  # under the 1 MiB limit; escaped into a letter it doubles
    big = b'{"eventId": "' + b"x" * 2_000_000 + b'"}'
    first, second = cdr(account, switch, 1, NOW - timedelta(hours=2)), cdr(account, switch, 2, NOW - timedelta(hours=1))
    await produce(workers.bootstrap, [("billing.cdr.v1", key, quotes), (*first[:1], key, first[1]),
                                      ("billing.cdr.v1", key, big), (*second[:1], key, second[1])])
    admin = await connect(database_url)
    try:
        async def both_cdrs_decided():
            return await admin.fetchval("SELECT count(*) FROM processed_inputs WHERE consumer = 'billing_guard'"
                                        " AND topic = 'billing.cdr.v1'") == 2
        await eventually(both_cdrs_decided, 60, "both CDRs to be decided")

        async def letters():
            found = [(r, orjson.loads(r.value)) for r in await read_topic(workers.bootstrap, "billing.cdr.v1.dlq")]
            return found if len(found) >= 2 else None
        found = await eventually(letters, 60, "two dead letters")
        rows = await admin.fetch('SELECT "offset", code, original_size, published_at FROM dead_lettered_inputs'
                                 ' ORDER BY "offset"')
    finally:
        await admin.close()
    assert len(found) == 2
    by_size = {letter["originalSize"]: (record, letter) for record, letter in found}
    assert set(by_size) == {len(quotes), len(big)}
    for record, letter in by_size.values():
        assert letter["consumer"] == "billing_guard" and dict(record.headers)["wuguan-consumer"] == b"billing_guard"
        assert len(record.value) <= 1_000_000
    assert by_size[len(quotes)][1]["error"]["code"] == "malformed_json" and by_size[len(quotes)][1]["truncated"]
    assert by_size[len(big)][1]["error"]["code"] == "event_too_large"
    assert [(r["code"], r["original_size"]) for r in rows] == [("malformed_json", len(quotes)),
                                                               ("event_too_large", len(big))]
    assert all(r["published_at"] is not None for r in rows)
    assert_never_restarted(workers, "billing_guard", pid)
