"""A relay reads its own service's decisions, found through its service's appends (migration 0014):
the cards and dunning relays do not walk every CDR the guard stored to find theirs, nor the guard's
relay the others' rows, and no decision costs an index entry for that order. The order an append
records covers the rows of its transaction and service only, whatever other positions fall in its
range. And what the guard's relay sends on its repartition topic is the note the contract defines."""
from __future__ import annotations

import contextlib
import re
import uuid
from datetime import datetime, timezone
from importlib import resources

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.registry import REPARTITION_TOPICS
from services.billing_guard.decider import GuardDecider
from services.common.db import connect
from services.common.eventstore import store
from services.common.eventstore.records import NewEvent
from services.common.runtime.decision_inputs import note_of
from services.common.runtime.metrics import RELAY_LAG
from services.common.runtime.relay import Relay, note_sql

from ..kafka_helpers import new_topic, read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
INDEX = "event_appends_service_order"
GUARD = GuardDecider.service


def _events(service: str, streams: list[str], payload: dict | None = None,
            chain: str | None = None) -> list[tuple[int, list[NewEvent]]]:
    return [(0, [NewEvent(event_id=str(uuid.uuid4()), stream_id=s, event_type=f"{service}.Test", service=service,
                          business_time=T0, payload=payload or {"decisionId": s}, chain_id=chain)]) for s in streams]


async def _store(conn, service: str, streams: list[str], payload: dict | None = None) -> list[store.StoredEvent]:
    async with conn.transaction():
        return await store.append(conn, _events(service, streams, payload))


@contextlib.asynccontextmanager
async def _relay(service: str, database_url: str, bootstrap: str):
    """(the service's relay to a topic of its own, a connection for it, the topic)."""
    topic = await new_topic(bootstrap, f"test.relay.{service}", 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    reader = await connect(database_url, role="wuguan_service")
    try:
        yield Relay(service=service, topic=topic, database_url=database_url, role="wuguan_service",
                    producer=producer, interval_s=0.1), reader, topic
    finally:
        await reader.close()
        await producer.stop()


async def _generic_plan(conn, sql: str) -> str:
    """The plan of the relay's query for any service, as Postgres may keep it under plan_cache_mode
    auto (the services' own connections plan every run for its parameters: db.SERVER_SETTINGS)."""
    await conn.execute(f"PREPARE page(xid8, bigint, text, integer, text[], text) AS {sql}")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        return "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE page('0', 0, 'cards', 1000, '{}', '')"))
    finally:
        await conn.execute("RESET plan_cache_mode")
        await conn.execute("DEALLOCATE page")


async def _checkpoint(reader, relay: Relay) -> int:
    return await reader.fetchval("SELECT global_position FROM relay_checkpoints WHERE relay = $1", relay.name)


async def test_the_cards_relay_publishes_its_own_rows_reading_none_of_the_guards(database_url, conn,
                                                                                 kafka_bootstrap):
    first = await _store(conn, "cards", ["card-a"])
    async with conn.transaction():  # the guard's batches between the two: 300 appends of 10
        for n in range(300):
            await store.append(conn, _events(GUARD, [f"guard-{n}-{i}" for i in range(10)]))
    last = await _store(conn, "cards", ["card-b"])
    await conn.execute("ANALYZE events; ANALYZE event_appends")
    async with _relay("cards", database_url, kafka_bootstrap) as (relay, reader, topic):
        plan = "\n".join(r[0] for r in await reader.fetch(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {relay.page_sql}", 0, 0, "cards", relay.page_size, [], ""))
        generic = await _generic_plan(reader, relay.page_sql)
        assert await relay.publish_page(reader) == 2  # the page holds its two rows, no guard row
        assert await relay.publish_page(reader) == 0
        checkpoint = await _checkpoint(reader, relay)
    # The service's appends walked through its index, each one's rows read by position: no row of
    # the guard's 300 appends is read and left out.
    assert INDEX in plan and "events_pkey" in plan, plan
    assert not re.findall(r"Rows Removed by Filter: [1-9]", plan), plan
    assert INDEX in generic, generic  # a plan made before the service is known still reads the range
    published = [orjson.loads(r.value)["decisionId"] for r in await read_topic(kafka_bootstrap, topic)]
    assert published == ["card-a", "card-b"]
    assert checkpoint == last[0].global_position != first[0].global_position


async def test_the_guards_relay_reads_only_its_own_appends(database_url, conn, kafka_bootstrap):
    """The guard's relay reads the guard's appends: the others' rows are neither published nor
    read, and its checkpoint stays at its own last decision."""
    mine = await _store(conn, GUARD, ["guard-a"])
    await _store(conn, "cards", [f"card-{i}" for i in range(5)])
    async with _relay(GUARD, database_url, kafka_bootstrap) as (relay, reader, topic):
        assert await relay.publish_page(reader) == 1
        assert await relay.publish_page(reader) == 0
        checkpoint = await _checkpoint(reader, relay)
    assert checkpoint == mine[0].global_position
    assert [orjson.loads(r.value)["decisionId"] for r in await read_topic(kafka_bootstrap, topic)] == ["guard-a"]


async def test_an_append_costs_one_row_and_no_decision_an_entry_of_commit_order(conn):
    """A batch of decisions records one append per service; `events` keeps no index on tx_id."""
    stored = await _store(conn, GUARD, [f"guard-{i}" for i in range(40)])
    appends = await conn.fetch("SELECT first_position, last_position, service, decisions FROM event_appends")
    assert [tuple(a) for a in appends] == [(stored[0].global_position, stored[-1].global_position, GUARD, 40)]
    indexed = await conn.fetch("SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = 'events'::regclass")
    assert not [i["d"] for i in indexed if "tx_id" in i["d"]], indexed


async def test_positions_of_other_transactions_in_an_append_s_range_are_read_once_in_their_own_order(
        database_url, conn):
    """Migration 0014 records the appends of a store written before it by (transaction, service),
    each over the range of its positions: one transaction's range then holds another's row, which
    is read once, with its own transaction, and every reader's order is commit order."""
    other = await connect(database_url)
    try:
        first_tx = conn.transaction()
        await first_tx.start()
        a = await store.append(conn, _events("dunning", ["a1"], chain="dunning/t/0"))  # position 1
        async with other.transaction():
            b = await store.append(other, _events("dunning", ["b"], chain="dunning/t/1"))  # 2, committed first
        a += await store.append(conn, _events("dunning", ["a2"], chain="dunning/t/0"))  # 3: the range 1..3
        await first_tx.commit()
    finally:
        await other.close()
    async with conn.transaction():  # one load of two services' rows, interleaved: three runs
        mixed = await store.append(conn, [*_events("cards", ["x"]), *_events("dunning", ["y"]), *_events("cards", ["z"])])
    migration = resources.files("services.common.eventstore").joinpath(
        "migrations", "0014_commit_order_by_append.sql").read_text()
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # past the append-only trigger
        await conn.execute("DELETE FROM event_appends")
        await conn.execute(migration)  # as on a store from before it: the appends from the rows
    assert await conn.fetchval("SELECT count(*) FROM event_appends") == 5
    order = [r["global_position"] for r in await conn.fetch(
        f"SELECT global_position FROM {store.committed_after('100')} ORDER BY {store.COMMIT_ORDER}", 0, 0)]
    assert order == [e.global_position for e in (*a, *b, *mixed)]
    first_tx_id = await conn.fetchval("SELECT tx_id FROM events WHERE global_position = $1", a[0].global_position)
    after_first = [r["global_position"] for r in await conn.fetch(
        f"SELECT global_position FROM {store.committed_after('100', service='$3')} ORDER BY {store.COMMIT_ORDER}",
        first_tx_id, a[0].global_position, "dunning")]
    # from within the range, the other transaction's row left for its own turn
    assert after_first == [a[1].global_position, b[0].global_position, mixed[1].global_position]


@pytest.mark.parametrize("decision_type", sorted(REPARTITION_TOPICS[GUARD].decision_types))
@pytest.mark.parametrize("lacks", [(), ("sequenceNumber",), ("correlationId",)])
async def test_the_note_postgres_builds_is_the_note_python_defines(conn, decision_type, lacks):
    """relay.note_sql (what the relay sends) and decision_inputs.note_of (the AsyncAPI document and
    the tests) agree, for every routed type, and for a decision without a field (a charge stored
    before charges carried their number; an input without a correlation id): null in both."""
    route = REPARTITION_TOPICS[GUARD]
    envelope = {"decisionId": str(uuid.uuid4()), "decisionType": decision_type,
                "businessTime": "2026-11-01T17:00:00+08:00", "service": GUARD, "correlationId": "corr-1", "causedBy": ["cdr-1"], "outcome": "charged",
                "payload": {"switchId": "SW-1", "sequenceNumber": 41, "usageId": "U-1", "callingNumber": "13812345678"}}
    for field in lacks:
        envelope.pop(field, None)
        envelope["payload"].pop(field, None)
    stored, = await _store(conn, GUARD, ["guard-account-A"], payload=envelope)
    note = orjson.loads(await conn.fetchval(f"SELECT {note_sql(route)} FROM events WHERE global_position = $1",
                                            stored.global_position))
    assert note == note_of(envelope, route.note_fields)
    assert "callingNumber" not in note["payload"]


async def test_a_relay_behind_counts_what_it_has_left_from_its_appends(database_url, conn, kafka_bootstrap):
    """The lag gauge of a relay that read a full page: the decisions of its service's appends
    after the page, counted from the appends (a row per batch), not from the log."""
    for n in range(3):
        await _store(conn, "cards", [f"card-{n}-{i}" for i in range(5)])
    await _store(conn, "dunning", [f"other-{i}" for i in range(7)])
    async with _relay("cards", database_url, kafka_bootstrap) as (relay, reader, _topic):
        relay.page_size = 5
        assert await relay.publish_page(reader) == 5
        assert RELAY_LAG.labels("cards")._value.get() == 10
        relay._lag_counted_at = float("-inf")
        assert await relay.publish_page(reader) == 5
        assert RELAY_LAG.labels("cards")._value.get() == 5
