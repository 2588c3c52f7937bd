"""Every decision published during the sample day fits its decision type's schema (issue 17).

The three workers decide whatever services.common.localstack.sample_day publishes (this test
does not list the inputs, so a richer sample day is covered as it grows); every record on the
three decision topics is then checked against the envelope, the Python payload schema of its
type, and the published JSON Schema file of its type (schemas/json/decision.<type>.schema.json).
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas.decision import validate_decision
from schemas.decision_payloads import validate_decision_payload
from schemas.generate import OUT_DIR, decision_type_file
from schemas.registry import DECISION_TOPICS
from schemas.errors import InvalidEvent
from services.common.db import connect
from services.common.localstack.sample_day import publish_sample_day, wait_until_quiet
from services.composition import SERVICES

from ..kafka_helpers import read_topic

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def published_decisions(bootstrap: str, database_url: str, timeout_s: float = 60) -> list:
    """The records of the decision topics, once every stored decision has been relayed."""
    conn = await connect(database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            stored = await conn.fetchval("SELECT count(*) FROM events")
            records = [r for topic in DECISION_TOPICS.values() for r in await read_topic(bootstrap, topic)]
            if len(records) >= stored or loop.time() > deadline:
                assert len(records) == stored, f"{stored} decisions stored, {len(records)} published"
                return records
            await asyncio.sleep(1)
    finally:
        await conn.close()


def json_schema_errors(decision: dict, validators: dict) -> list[str]:
    decision_type = decision["decisionType"]
    if decision_type not in validators:
        schema = orjson.loads((OUT_DIR / decision_type_file(decision_type)).read_bytes())
        validators[decision_type] = Draft202012Validator(schema, format_checker=FormatChecker())
    return [f"{decision_type}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validators[decision_type].iter_errors(decision)]


async def test_every_decision_published_in_the_sample_day_fits_its_type_schema(workers):
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)
    day = datetime.now(SHANGHAI).date()

    async def settled():
        await wait_until_quiet(workers.database_url)

    sent = await publish_sample_day(workers.bootstrap, day, accounts=60, settled=settled)
    await settled()
    records = await published_decisions(workers.bootstrap, workers.database_url)
    assert sent > 100 and len(records) > 100

    validators, errors, types = {}, [], set()
    for record in records:
        decision = orjson.loads(record.value)
        types.add(decision["decisionType"])
        for check in (lambda d: validate_decision(d, record.topic), validate_decision_payload):
            try:
                check(decision)
            except InvalidEvent as exc:
                errors.append(f"{decision['decisionType']}: {exc}")
        errors += json_schema_errors(decision, validators)
        assert dict(record.headers)["wuguan-decision-type"].decode() == decision["decisionType"]
    assert errors == [], sorted(set(errors))[:30]
    assert len(types) >= 10, sorted(types)  # the sample day exercises many decision types
