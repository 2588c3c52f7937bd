"""Issue 19's two losses, reproduced against the real workers, broker and Postgres, and shown
closed (CONTRACT.NOTHING_LOST, CONTRACT.DLQ_FITS):

- INSERT revoked from the services' role, or the database read-only, while 20 payments arrive:
  the workers hold them, report themselves blocked, commit no offset, and after the GRANT (or
  once writable) decide each one exactly once, in the same process;
- a 900 KB event of quote characters (its escaped dead letter would be 1.8 MB) and a 2 MB
  event, each followed by a valid CDR on the same partition: one dead letter each, naming
  billing_guard, both CDRs decided, and the worker never restarts.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import orjson
import pytest

from services.common.db import connect

from ..integration.guard_inputs import cdr, uid
from ..kafka_helpers import read_topic
from .faults import (
    NOW, PAYMENT_READERS, all_decided_once, assert_held_while_refused, assert_never_restarted, committed_offsets,
    dead_letter_count, eventually, payments, produce, start_healthy, wait_healthy_again,
)

pytestmark = pytest.mark.e2e

KILL_WORKER_SESSIONS = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()")


async def refuse_then_accept(workers, database_url: str, refuse: list[str], accept: list[str], what: str) -> None:
    """While the database refuses the workers' writes, 20 payments arrive: both workers hold them
    (blocked metric, /healthz 503, committed offsets unmoved) and, once it accepts writes again,
    decide each one exactly once in the same process, with no dead letter."""
    pids = await start_healthy(workers)
    offsets_before = {s: await committed_offsets(workers.bootstrap, s) for s in PAYMENT_READERS}
    admin = await connect(database_url)
    try:
        for sql in refuse:
            await admin.execute(sql)
        await produce(workers.bootstrap, payments(20))
        await assert_held_while_refused(workers, PAYMENT_READERS, offsets_before, what)
        assert await admin.fetchval("SELECT count(*) FROM processed_inputs") == 0
    finally:
        for sql in accept:
            await admin.execute(sql)
        await admin.close()
    await eventually(lambda: all_decided_once(database_url, 20), 60, "every payment decided once by both services")
    assert await dead_letter_count(database_url) == 0
    await wait_healthy_again(workers, PAYMENT_READERS)
    # The offsets that did not move while blocked now cover all 20 payments: the check above
    # reads the live group, it is not blind.
    async def offsets_cover_all():
        return all([sum((await committed_offsets(workers.bootstrap, s)).values()) == 20 for s in PAYMENT_READERS])
    await eventually(offsets_cover_all, 30, "the committed offsets to cover every payment")
    for service, pid in pids.items():
        assert_never_restarted(workers, service, pid)


async def test_NOTHING_LOST_insert_revoked_then_granted_decides_every_payment_once(workers, database_url):
    await refuse_then_accept(workers, database_url, ["REVOKE INSERT ON events FROM wuguan_service"],
                             ["GRANT INSERT ON events TO wuguan_service"], "INSERT revoked")


async def test_NOTHING_LOST_read_only_database_then_writable_decides_every_payment_once(workers, database_url):
    database = urlsplit(database_url).path.lstrip("/")
    # The setting reaches new sessions only: the workers' sessions are ended, and they reconnect.
    await refuse_then_accept(
        workers, database_url,
        [f'ALTER DATABASE "{database}" SET default_transaction_read_only = on', KILL_WORKER_SESSIONS],
        [f'ALTER DATABASE "{database}" RESET default_transaction_read_only', KILL_WORKER_SESSIONS],
        "a read-only database")


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
