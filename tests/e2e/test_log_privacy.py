"""A.PRIVACY: the workers' logs never carry a phone number or a person's name from the inputs.

The three workers run over a sample day (services.common.localstack.sample_day) plus a few
inputs that carry names (customer-data changes of the account owner, a dispute) and bad inputs
that carry numbers and names (so the dead-letter path, which logs, is exercised too). Then
every phone number and name in that data is looked for in the worker logs.
"""
from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.encoding import encode_event
from schemas.registry import partition_key
from services.billing_guard.decider import INPUT_TOPICS as GUARD_TOPICS
from services.cards.decider import INPUT_TOPICS as CARDS_TOPICS
from services.common.db import connect
from services.common.localstack.sample_day import sample_day
from services.composition import SERVICES
from services.dunning.decider import INPUT_TOPICS as DUNNING_TOPICS

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE_FIELDS = ("callingNumber", "calledNumber")
NAMES = ("张伟", "李娜", "Wang Xiuying", "欧阳明日")
CONSUMERS = {"billing_guard": GUARD_TOPICS, "dunning": DUNNING_TOPICS, "cards": CARDS_TOPICS}


def personal_inputs(now: datetime) -> list[tuple[str, bytes, bytes]]:
    """Inputs whose values are names and numbers, valid and invalid."""
    out = []

    def emit(topic, payload, when):
        value = encode_event(topic, payload, event_id=uuid.uuid4(), event_time=when, source="privacy-test")
        out.append((topic, partition_key(topic, payload).encode(), value))

    for i, (old, new) in enumerate([(NAMES[0], NAMES[1]), (NAMES[2], NAMES[3])]):
        emit("billing.customer.v1", {
            "requestId": f"REQ-PRIV-{i}", "accountId": f"ACC-{i + 1:05d}", "field": "billingAccountOwner",
            "oldValue": old, "newValue": new, "operatorId": "OP-1", "operatorRole": "counterClerk",
            "channel": "counter", "reason": f"owner {new} asked, phone 13800001111",
        }, now - timedelta(hours=1))
    emit("billing.dispute.v1", {
        "ticketId": "TT-PRIV-1", "ticketType": "Bill Dispute", "action": "open", "accountId": "ACC-00003",
        "billId": "BILL-ACC-00003-x", "disputedItems": ["CDR-ACC-00003-0"],
        "disputedAmount": {"amountMinor": 100, "currency": "CNY"},
        "reason": f"{NAMES[0]} says 13911112222 was never called", "channel": "hotline", "actorId": "CSR-1",
    }, now - timedelta(hours=1))
    # Bad inputs holding personal data: refused, dead-lettered, and logged by code only.
    cdr = {"usageId": "U-PRIV", "switchId": "SW-01", "originId": "O-PRIV", "sequenceNumber": -5,
           "accountId": "ACC-00001", "callingNumber": "13712345678", "calledNumber": "13687654321"}
    out.append(("billing.cdr.v1", b"ACC-00001", orjson.dumps({"eventId": str(uuid.uuid4()), "payload": cdr})))
    bad_sanity = dict(cdr, sequenceNumber=1, usageType="voice", destinationClass="local",
                      startDateTime=now - timedelta(minutes=5), endDateTime=now - timedelta(minutes=10),
                      durationSeconds=-300, collection="online", callingNumber="13599998888")
    emit("billing.cdr.v1", bad_sanity, now)  # contract-valid, refused by CP3.SANITY
    out.append(("billing.customer.v1", b"ACC-00002", f'{{"name": "{NAMES[1]}", "phone": "13677776666"'.encode()))
    return out


def secrets_in(messages) -> set[str]:
    found = set(NAMES)
    for _, _, value in messages:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            found.update(re.findall(rb"1[3-9]\d{9}", value) and
                         [m.decode() for m in re.findall(rb"1[3-9]\d{9}", value)])
            continue
        payload = event.get("payload") or {}
        for field in PHONE_FIELDS:
            if isinstance(payload.get(field), str):
                found.add(payload[field])
        for text in (payload.get("reason"), payload.get("newValue"), payload.get("oldValue")):
            if isinstance(text, str):
                found.update(re.findall(r"1[3-9]\d{9}", text))
    return found


async def test_worker_logs_hold_no_phone_number_or_name(workers):
    logs, secrets = await _logs_of_a_day(workers)
    assert any("dead-lettered" in text for text in logs.values())
    leaks = sorted((service, secret) for service, text in logs.items() for secret in secrets if secret in text)
    assert leaks == [], f"personal data in worker logs: {leaks[:20]}"


async def test_json_logs_carry_decision_stream_and_rule_ids_and_no_personal_data(workers):
    """Issue 16: --log-format json (WUGUAN_LOG_FORMAT=json for a worker): one JSON object a line,
    a line a published decision with its ids and rules, dead letters with their code."""
    workers.extra_env = {"WUGUAN_LOG_FORMAT": "json"}
    logs, secrets = await _logs_of_a_day(workers)
    records = {service: [orjson.loads(line) for line in text.splitlines() if line.strip()]
               for service, text in logs.items()}  # every line parses: no text line among them
    for service, lines in records.items():
        published = [r for r in lines if r["message"].startswith("published ")]
        assert published, service
        assert all(r["decisionId"] and r["streamId"] and r["ruleIds"] and r["service"] == service for r in published)
        assert all({"time", "level", "logger"} <= set(r) for r in lines)
    rules = {rule for r in records["billing_guard"] if r.get("ruleIds") for rule in r["ruleIds"]}
    assert {"CP2.EFFECTIVE_DATING", "CP2.INCREASE_NEEDS_APPROVAL", "CP5.WINDOW_CDRS", "D.AUTO_CREDIT"} <= rules
    dead = [r for lines in records.values() for r in lines if r["message"].startswith("dead-lettered")]
    assert dead and all(r["code"] and r["topic"] and "offset" in r for r in dead)
    leaks = sorted((service, secret) for service, text in logs.items() for secret in secrets if secret in text)
    assert leaks == [], f"personal data in worker logs: {leaks[:20]}"


async def _logs_of_a_day(workers) -> tuple[dict, set]:
    """The three workers' logs after a sample day plus inputs holding personal data; and that data."""
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    day = sample_day(now.date(), accounts=120)
    # sample_day returns the messages, or waves of them (stock before sales) in newer trees.
    waves = [list(w) for w in day] if day and isinstance(day[0], list) else [day]
    waves[-1] = waves[-1] + personal_inputs(now)
    messages = [m for wave in waves for m in wave]
    secrets = secrets_in(messages)
    phones = {s for s in secrets if s.isdigit()}
    assert len(phones) > 300 and set(NAMES) <= secrets  # the test looks for something real

    async def handled() -> tuple[set, int]:
        conn = await connect(workers.database_url)
        try:
            done = {tuple(r) for r in await conn.fetch('SELECT consumer, topic, partition, "offset" FROM processed_inputs'
                                                       ' UNION SELECT consumer, topic, partition, "offset" FROM dead_lettered_inputs')}
            return done, await conn.fetchval("SELECT count(*) FROM dead_lettered_inputs")
        finally:
            await conn.close()

    producer = AIOKafkaProducer(bootstrap_servers=workers.bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    expected = set()
    loop = asyncio.get_running_loop()
    try:
        for wave in waves:
            for topic, key, value in wave:
                meta = await producer.send_and_wait(topic, key=key, value=value)
                expected |= {(c, topic, meta.partition, meta.offset) for c, topics in CONSUMERS.items() if topic in topics}
            deadline = loop.time() + 90
            while True:
                done, lettered = await handled()
                if expected <= done or loop.time() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert expected <= done, f"{len(expected - done)} inputs not handled in time"
    finally:
        await producer.stop()
    assert lettered >= 3  # the dead-letter path (which logs) ran
    await asyncio.sleep(2)  # let timers and relays log what they log

    logs = {service: workers.log(service) for service in SERVICES}
    assert all(len(text) > 200 for text in logs.values()), "a worker wrote no log: the scan would prove nothing"
    return logs, secrets
