"""No fault loses an input and no input stops a partition (issue 19, CONTRACT.NOTHING_LOST),
on the real runtime: the guard's BatchProcessor and dead-letter relay, real Postgres, real broker.

- a database that refuses writes (INSERT revoked, read-only) holds the batch until it accepts
  them, then decides every input exactly once;
- an input whose decisions the database refuses for what they hold is isolated and
  dead-lettered, and the rest of its batch is decided;
- a dead letter the broker refuses waits in Postgres, counted, and is sent once it can be.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from services.billing_guard.worker import DEFINITION
from services.common.db import connect
from services.common.runtime import metrics
from services.common.runtime.dead_letter_relay import DeadLetterRelay
from services.common.runtime.worker import ServiceDefinition

from ..kafka_helpers import read_topic
from .guard_inputs import cdr, tariff, uid
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(hours=6)
POISON_USAGE = "U-POISON"


class DefectiveClaims:
    """The guard's decider, but for the claims of the CDR usage POISON_USAGE (`poisoned`), as a
    decision of a defective release might make them."""

    def __init__(self, decider):
        self._decider = decider

    def __getattr__(self, name):
        return getattr(self._decider, name)

    def claims_made(self, decision: dict) -> list[tuple[str, str]]:
        made = self._decider.claims_made(decision)
        return self.poisoned(decision, made) if decision.get("payload", {}).get("usageId") == POISON_USAGE else made


class PoisonClaims(DefectiveClaims):
    """Its claim's value is one Postgres refuses (a NUL in text: SQLSTATE 22021)."""

    @staticmethod
    def poisoned(decision: dict, made: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(key, "poison\x00") for key, _ in made]


class ClaimsOfNoName(Exception):
    pass


class UnnamedClaims(DefectiveClaims):
    """Naming its claims raises, with a text that quotes the decision, as a careless one would."""

    @staticmethod
    def poisoned(decision: dict, made: list[tuple[str, str]]) -> list[tuple[str, str]]:
        raise ClaimsOfNoName(f"no claim for {decision['payload']}")


async def guard_rows(harness, sql: str, *args):
    async with harness.pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def decided_usages(harness) -> list[str]:
    rows = await guard_rows(harness, "SELECT payload->'payload'->>'usageId' AS u FROM events"
                                     " WHERE event_type = 'guard.CdrRated' ORDER BY global_position")
    return [r["u"] for r in rows]


async def wait_blocked(processor, timeout_s: float = 20) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while processor.blocked_by is None:
        assert asyncio.get_running_loop().time() < deadline, "the processor never reported the refusal"
        await asyncio.sleep(0.05)
    return processor.blocked_by


async def admin(harness):
    return await connect(harness.database_url)


@pytest.fixture
async def guard(kafka_bootstrap, database_url):
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION) as h:
        await h.feed(tariff("T-STD", 900, T0 - timedelta(days=1), 10, T0 - timedelta(days=2)))
        yield h


async def test_NOTHING_LOST_insert_revoked_holds_the_batch_then_decides_every_input_once(guard):
    account, switch = uid("A"), uid("SW")
    batch = [guard.message(*cdr(account, switch, n, T0 + timedelta(minutes=n))) for n in range(1, 21)]
    conn = await admin(guard)
    try:
        await conn.execute("REVOKE INSERT ON events FROM wuguan_service")
        task = asyncio.create_task(guard.process(batch))
        assert await wait_blocked(guard.processor) == "42501"  # insufficient_privilege
        assert metrics.STORE_BLOCKED.labels("billing_guard")._value.get() == 1
        await asyncio.sleep(1.0)
        assert not task.done(), "process() returned although nothing could be stored"
        await conn.execute("GRANT INSERT ON events TO wuguan_service")
        await asyncio.wait_for(task, 30)
    finally:
        await conn.execute("GRANT INSERT ON events TO wuguan_service")
        await conn.close()
    assert guard.processor.blocked_by is None and metrics.STORE_BLOCKED.labels("billing_guard")._value.get() == 0
    rated = await decided_usages(guard)
    assert len(rated) == 20 and len(set(rated)) == 20
    assert not await guard_rows(guard, "SELECT 1 FROM dead_lettered_inputs")
    await guard.process(batch)  # redelivered after the grant, as Kafka would: nothing changes
    assert len(await decided_usages(guard)) == 20


async def test_NOTHING_LOST_a_read_only_database_is_waited_for_not_skipped(guard):
    account, switch = uid("A"), uid("SW")
    batch = [guard.message(*cdr(account, switch, n, T0 + timedelta(minutes=n))) for n in range(1, 6)]
    conn = await admin(guard)
    database = await conn.fetchval("SELECT current_database()")
    try:
        await conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        await guard.pool.expire_connections()  # new sessions take the setting
        task = asyncio.create_task(guard.process(batch))
        assert await wait_blocked(guard.processor) == "25006"  # read_only_sql_transaction
        await conn.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        await guard.pool.expire_connections()
        await asyncio.wait_for(task, 30)
    finally:
        await conn.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        await conn.close()
    assert len(await decided_usages(guard)) == 5


async def one_poisoned_batch(kafka_bootstrap, database_url, defect, poison_at: int, count: int):
    """CDRs 1..`count` of one account through a guard whose decider `defect` wraps (a
    DefectiveClaims), the `poison_at`-th of usage POISON_USAGE, in one batch: every other one is
    decided and that one alone is refused as a processing error. Returns (the account, the batch,
    the refusal's message)."""
    defective = ServiceDefinition(decider=defect(DEFINITION.decider), load_policy=DEFINITION.load_policy)
    async with RuntimeHarness(kafka_bootstrap, database_url, defective) as guard:
        await guard.feed(tariff("T-STD", 900, T0 - timedelta(days=1), 10, T0 - timedelta(days=2)))
        account, switch = uid("A"), uid("SW")
        usages = [f"U-OK-{n}" if n != poison_at else POISON_USAGE for n in range(1, count + 1)]
        batch = [guard.message(*cdr(account, switch, n, T0 + timedelta(minutes=n), usage_id=u))
                 for n, u in enumerate(usages, 1)]
        await asyncio.wait_for(guard.process(batch), 60)
        assert await decided_usages(guard) == [u for u in usages if u != POISON_USAGE]
        refused = await guard_rows(guard, 'SELECT "offset", code, message FROM dead_lettered_inputs')
    assert [(r["offset"], r["code"]) for r in refused] == [(batch[poison_at - 1].offset, "processing_error")]
    return account, batch, refused[0]["message"]


async def test_NOTHING_LOST_an_input_the_database_refuses_is_isolated_and_the_rest_decided(kafka_bootstrap, database_url):
    account, batch, message = await one_poisoned_batch(kafka_bootstrap, database_url, PoisonClaims, poison_at=3, count=7)
    assert "while deciding or storing" in message and "poison" not in message
    letters = [orjson.loads(r.value) for r in await read_topic(kafka_bootstrap, "billing.cdr.v1.dlq")]
    mine = [x for x in letters
            if (x["key"], x["offset"], x["consumer"]) == (account, batch[2].offset, "billing_guard")]
    assert len(mine) == 1 and mine[0]["truncated"] is False


async def test_NOTHING_LOST_claims_that_cannot_be_named_poison_that_input_alone(kafka_bootstrap, database_url):
    """A decision's claims are named while the input is decided (BatchProcessor._decide_one): when
    claims_made raises, that input is dead-lettered as a processing error naming the exception's
    class only, and the rest of the batch, the same account's later CDRs included, is decided."""
    account, _, message = await one_poisoned_batch(kafka_bootstrap, database_url, UnnamedClaims, poison_at=2, count=5)
    assert "ClaimsOfNoName" in message
    assert account not in message and POISON_USAGE not in message


async def test_CONTRACT_DLQ_DURABLE_a_letter_the_broker_refuses_waits_in_postgres_then_goes(guard):
    # Malformed JSON of 600 kB, under the event limit; escaped, its letter would weigh 1.2 MB.
    huge = b'{"eventId": "' + b'"' * 600_000 + b'"}'
    message = guard.message("billing.cdr.v1", huge, key=b"A-1")
    await guard.processor.process([message])
    # A relay whose letters may weigh more than its producer may send (the broker's limit).
    strict = DeadLetterRelay(service="billing_guard", pool=guard.pool, producer=guard.producer, interval_s=0.1,
                             max_bytes=4_000_000)
    assert await strict.deliver_due() == 0
    [row] = await guard_rows(guard, "SELECT attempts, last_error, published_at, original_size, original"
                                    " FROM dead_lettered_inputs")
    assert (row["attempts"], row["last_error"], row["published_at"]) == (1, "MessageSizeTooLargeError", None)
    assert (row["original_size"], bytes(row["original"])) == (len(huge), huge)  # the whole original is kept
    assert metrics.DEAD_LETTERS_UNDELIVERED.labels("billing_guard")._value.get() == 1

    conn = await admin(guard)
    try:
        await conn.execute("UPDATE dead_lettered_inputs SET next_attempt_at = now()")
    finally:
        await conn.close()
    fitting = DeadLetterRelay(service="billing_guard", pool=guard.pool, producer=guard.producer, interval_s=0.1,
                              max_bytes=100_000)
    assert await fitting.deliver_due() == 1
    letters = [orjson.loads(r.value) for r in await read_topic(guard.bootstrap, "billing.cdr.v1.dlq")
               if dict(r.headers).get("wuguan-consumer") == b"billing_guard"]
    [letter] = [x for x in letters if x["offset"] == message.offset]
    assert letter["truncated"] is True and letter["originalSize"] == len(huge)
    assert letter["error"]["code"] == "malformed_json"
    assert metrics.DEAD_LETTERS_UNDELIVERED.labels("billing_guard")._value.get() == 0


async def test_CONTRACT_KEY_a_key_that_is_not_the_account_is_dead_lettered(guard):
    account, switch = uid("A"), uid("SW")
    topic, value = cdr(account, switch, 1, T0)
    await guard.process([guard.message(topic, value, key=b"someone-else"), guard.message(topic, value)])
    [row] = await guard_rows(guard, "SELECT code, message FROM dead_lettered_inputs")
    assert row["code"] == "key_mismatch" and "payload.accountId" in row["message"]
    assert len(await decided_usages(guard)) == 1  # the same event, keyed right, is decided


async def test_CONTRACT_DLQ_FITS_a_huge_key_and_years_of_failed_attempts_still_let_the_letter_go(guard):
    """A 300 kB Kafka key would push the letter's record over the broker's limit: the record is
    keyed by the key's SHA-256 instead (the letter keeps the key's start as text). A letter that
    failed 5,000 times is retried 5 minutes later, not after 2**5000 seconds or an SQL error."""
    quotes = b'"' * 600_000  # malformed, and its escaped letter would weigh 1.2 MB
    await guard.processor.process([guard.message("billing.cdr.v1", quotes, key=b"k" * 300_000)])
    conn = await admin(guard)
    try:
        await conn.execute("UPDATE dead_lettered_inputs SET attempts = 5000")
        strict = DeadLetterRelay(service="billing_guard", pool=guard.pool, producer=guard.producer, interval_s=0.1,
                                 max_bytes=4_000_000)
        assert await strict.deliver_due() == 0  # the producer refuses a 1.2 MB record
        wait = await conn.fetchval("SELECT extract(epoch FROM next_attempt_at - clock_timestamp())"
                                   " FROM dead_lettered_inputs")
        assert 250 < wait <= 300
        await conn.execute("UPDATE dead_lettered_inputs SET next_attempt_at = now()")
    finally:
        await conn.close()
    fitting = DeadLetterRelay(service="billing_guard", pool=guard.pool, producer=guard.producer, interval_s=0.1)
    assert await fitting.deliver_due() == 1
    records = [r for r in await read_topic(guard.bootstrap, "billing.cdr.v1.dlq")
               if dict(r.headers).get("wuguan-consumer") == b"billing_guard" and len(r.key or b"") == 64]
    [letter] = [orjson.loads(r.value) for r in records if orjson.loads(r.value)["originalSize"] == len(quotes)]
    assert letter["truncated"] and letter["key"] == "k" * 1000

