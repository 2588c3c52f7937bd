"""A relay of a service other than the guard reads its own rows, not the guard's (migration 0013):
the cards and dunning relays no longer walk every CDR the guard stored to find their decisions,
and the guard's rows cost no entry in the index that makes that possible. And what the guard's
relay sends on its repartition topic is the note the contract defines."""
from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.registry import BULK_SERVICE, REPARTITION_TOPICS
from services.billing_guard.decider import GuardDecider
from services.cards.decider import CardsDecider
from services.common.db import connect
from services.common.eventstore import store
from services.common.eventstore.records import NewEvent
from services.common.runtime.decision_inputs import note_of
from services.common.runtime.relay import Relay, note_sql

from ..kafka_helpers import new_topic, read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
INDEX = "events_service_commit_order"


async def _store(conn, service: str, streams: list[str], payload: dict | None = None) -> list[store.StoredEvent]:
    events = [NewEvent(event_id=str(uuid.uuid4()), stream_id=s, event_type=f"{service}.Test", service=service,
                       business_time=T0, payload=payload or {"decisionId": s}) for s in streams]
    async with conn.transaction():
        return await store.append(conn, [(0, [e]) for e in events])


async def test_the_index_leaves_out_the_bulk_service_only(conn):
    predicate = await conn.fetchval(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = $1::regclass", INDEX)
    assert predicate == f"(service <> '{BULK_SERVICE}'::text)"
    assert BULK_SERVICE == GuardDecider.service  # the migration names the guard
    assert not store.reads_own_range(GuardDecider.service) and store.reads_own_range(CardsDecider.service)


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
    await _store(conn, "billing_guard", [f"guard-{i}" for i in range(3000)])
    last = await _store(conn, "cards", ["card-b"])
    await conn.execute("ANALYZE events")
    async with _relay("cards", database_url, kafka_bootstrap) as (relay, reader, topic):
        plan = "\n".join(r[0] for r in await reader.fetch(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {relay.page_sql}", 0, 0, "cards", relay.page_size, [], ""))
        generic = await _generic_plan(reader, relay.page_sql)
        assert await relay.publish_page(reader) == 2  # the page holds its two rows, no guard row
        assert await relay.publish_page(reader) == 0
        checkpoint = await _checkpoint(reader, relay)
    assert INDEX in plan and "Rows Removed by Filter" not in plan, plan
    assert INDEX in generic, generic  # a plan made before the service is known still reads the range
    published = [orjson.loads(r.value)["decisionId"] for r in await read_topic(kafka_bootstrap, topic)]
    assert published == ["card-a", "card-b"]
    assert checkpoint == last[0].global_position != first[0].global_position


async def test_the_guards_relay_moves_past_the_other_services_rows(database_url, conn, kafka_bootstrap):
    """Its rows are not in the index: it reads the log across services, and its checkpoint moves
    past the others' rows, so an idle guard does not read them again at each poll."""
    await _store(conn, "billing_guard", ["guard-a"])
    tail = await _store(conn, "cards", [f"card-{i}" for i in range(5)])
    async with _relay("billing_guard", database_url, kafka_bootstrap) as (relay, reader, topic):
        assert await relay.publish_page(reader) == 6
        checkpoint = await _checkpoint(reader, relay)
    assert checkpoint == tail[-1].global_position
    assert [orjson.loads(r.value)["decisionId"] for r in await read_topic(kafka_bootstrap, topic)] == ["guard-a"]


@pytest.mark.parametrize("decision_type", sorted(REPARTITION_TOPICS[BULK_SERVICE].decision_types))
@pytest.mark.parametrize("lacks", [(), ("sequenceNumber",), ("correlationId",)])
async def test_the_note_postgres_builds_is_the_note_python_defines(conn, decision_type, lacks):
    """relay.note_sql (what the relay sends) and decision_inputs.note_of (the AsyncAPI document and
    the tests) agree, for every routed type, and for a decision without a field (a charge stored
    before charges carried their number; an input without a correlation id): null in both."""
    route = REPARTITION_TOPICS[BULK_SERVICE]
    envelope = {"decisionId": str(uuid.uuid4()), "decisionType": decision_type,
                "businessTime": "2026-11-01T17:00:00+08:00", "service": BULK_SERVICE, "correlationId": "corr-1", "causedBy": ["cdr-1"], "outcome": "charged",
                "payload": {"switchId": "SW-1", "sequenceNumber": 41, "usageId": "U-1", "callingNumber": "13812345678"}}
    for field in lacks:
        envelope.pop(field, None)
        envelope["payload"].pop(field, None)
    stored, = await _store(conn, BULK_SERVICE, ["guard-account-A"], payload=envelope)
    note = orjson.loads(await conn.fetchval(f"SELECT {note_sql(route)} FROM events WHERE global_position = $1",
                                            stored.global_position))
    assert note == note_of(envelope, route.note_fields)
    assert "callingNumber" not in note["payload"]
