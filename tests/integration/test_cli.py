"""The `wuguan` command against a real Postgres and broker: migrate, verify, topics, dlq,
and a worker that refuses a bad policy naming the field."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.common.db import connect
from services.common.eventstore import store
from services.common.eventstore.records import NewEvent
from services.common.localstack.publish import publish
from services.common.localstack.topics import create_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def wuguan(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


async def test_migrate_then_verify_passes_and_fails_after_a_superuser_edit(database_url):
    assert wuguan("migrate", DATABASE_URL=database_url).returncode == 0
    again = wuguan("migrate", DATABASE_URL=database_url)
    assert "already up to date" in again.stdout
    conn = await connect(database_url)
    try:
        async with conn.transaction():
            await store.append(conn, [(0, [
                NewEvent(event_id=str(uuid.uuid4()), stream_id="s", event_type="t", service="dunning",
                         business_time=datetime.now(timezone.utc), payload={"amountMinor": n})
                for n in range(3)
            ])])
        ok = wuguan("verify", DATABASE_URL=database_url)
        assert ok.returncode == 0 and "OK: 3 events checked" in ok.stdout
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE events SET payload = '{\"amountMinor\": 999}' WHERE global_position = 2")
    finally:
        await conn.close()
    tampered = wuguan("verify", DATABASE_URL=database_url)
    assert tampered.returncode == 1
    assert "TAMPERED: chain dunning/- seq 2 (position 2)" in tampered.stdout


def test_worker_with_a_bad_policy_refuses_to_start_naming_the_field(tmp_path):
    policy = json.loads((ROOT / "services/dunning/policy/default.json").read_text())
    policy["treatments"][0]["firstOffenceChannel"] = "voice"
    (tmp_path / "dunning.json").write_text(json.dumps(policy))
    result = wuguan("worker", "dunning", WUGUAN_POLICY_DIR=str(tmp_path))
    assert result.returncode == 2
    assert "treatments.0.firstOffenceChannel" in result.stderr


def test_bad_environment_value_names_the_variable():
    result = wuguan("worker", "dunning", WUGUAN_PARTITIONS="many")
    assert result.returncode == 2
    assert "WUGUAN_PARTITIONS" in result.stderr


async def test_dlq_inspect_and_replay(kafka_bootstrap):
    await create_topics(kafka_bootstrap, 3)
    marker = uuid.uuid4().hex
    from schemas.errors import InvalidEvent
    from schemas.validation import dead_letter

    offset = uuid.uuid4().int % 10**12  # unique origin: other tests share this topic
    letter = dead_letter("cards.complaint.v1", 0, offset, marker.encode(), b'{"x": 1}',
                         InvalidEvent("payload_invalid", "payload.cardSerial: missing"), datetime.now(timezone.utc),
                         consumer="cards")
    second = dead_letter("cards.complaint.v1", 0, offset, marker.encode(), b'{"x": 1}',
                         InvalidEvent("payload_invalid", "payload.cardSerial: missing"), datetime.now(timezone.utc),
                         consumer="another_service")
    await publish(kafka_bootstrap, [("cards.complaint.v1.dlq", marker.encode(), letter),
                                    ("cards.complaint.v1.dlq", marker.encode(), second)])
    seen = wuguan("dlq", "inspect", "cards.complaint.v1", "--json", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    assert seen.returncode == 0
    # Issue 16: the two services' letters for one input are one entry, not two.
    mine = [row for row in json.loads(seen.stdout) if row["input"] == f"cards.complaint.v1[0]@{offset}"]
    assert mine == [{"input": f"cards.complaint.v1[0]@{offset}", "code": "payload_invalid",
                     "message": "payload.cardSerial: missing", "services": "cards, another_service"}]
    table = wuguan("dlq", "inspect", "cards.complaint.v1", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    assert table.returncode == 0 and table.stdout.count(f"@{offset}") == 1
    replayed = wuguan("dlq", "replay", "cards.complaint.v1.dlq", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    assert replayed.returncode == 0 and "replayed" in replayed.stdout
    from ..kafka_helpers import read_topic

    originals = [r for r in await read_topic(kafka_bootstrap, "cards.complaint.v1") if r.key == marker.encode()]
    assert [r.value for r in originals] == [b'{"x": 1}']


async def test_work_queue_reads_todays_manual_reminders_from_the_store(database_url):
    from services.common.eventstore.migrate import migrate

    from harness.dunning import SHANGHAI, Account, bill, of_type

    acc = Account()
    due = datetime(2026, 10, 15, 12, 0, tzinfo=SHANGHAI)
    event = bill("A7", "B7", due, 4_200, level="A", tier="gold")
    event.payload["customer"]["accountManagerId"] = "AM-9"
    acc.feed(event)
    acc.fire_due_timers(due + timedelta(days=6))
    reminder = of_type(acc.log, "dunning.ReminderDue")[0]
    conn = await connect(database_url)
    try:
        await migrate(conn)
        async with conn.transaction():
            await store.append(conn, [(0, [
                NewEvent(event_id=d["decisionId"], stream_id=d["streamId"], event_type=d["decisionType"],
                         service="dunning", business_time=datetime.fromisoformat(d["businessTime"]), payload=d)
                for d in acc.log
            ])])
    finally:
        await conn.close()
    day = datetime.fromisoformat(reminder["businessTime"]).astimezone(SHANGHAI).date().isoformat()
    result = wuguan("work-queue", "--day", day, "--csv", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("manager,dueAt,accountId")
    assert lines[1].startswith("AM-9,") and ",A7,B7,4200,1,accountManager," in lines[1]


async def test_cards_stock_and_disposal_lists_from_the_store(database_url):
    from services.common.eventstore.migrate import migrate

    from harness import cards as cf

    world = cf.World()
    cards = cf.serials("CLI-CARD", 6)
    world.feed(cf.batch("B-CLI", "OUT-CLI", cards, face=5_000))
    world.feed(cf.activated(cards[0], "OUT-CLI"), cf.used(cards[0], 700))
    world.feed(cf.complaint(cards[0], "OUT-CLI", cf.later(30)))
    conn = await connect(database_url)
    try:
        await migrate(conn)
        async with conn.transaction():
            versions: dict[str, int] = {}
            for d in world.log:
                versions[d["streamId"]] = versions.get(d["streamId"], 0) + 1
            await store.append(conn, [(0, [
                NewEvent(event_id=d["decisionId"], stream_id=d["streamId"], event_type=d["decisionType"],
                         service="cards", business_time=datetime.fromisoformat(d["businessTime"]), payload=d)
                for d in world.log if d["streamId"] == stream
            ]) for stream in versions])
    finally:
        await conn.close()
    stock = wuguan("cards", "stock", "--csv", DATABASE_URL=database_url)
    assert stock.returncode == 0, stock.stderr
    # six issued, one sold, one drawn as the replacement: four on hand
    assert stock.stdout.strip().splitlines() == ["outletId,faceValueMinor,cardsOnHand", "OUT-CLI,5000,4"]
    disposal = wuguan("cards", "disposal", "--outlet", "OUT-CLI", "--json", DATABASE_URL=database_url)
    assert disposal.returncode == 0, disposal.stderr
    # Issue 16: money as integer fen columns, not Python dicts.
    [card] = json.loads(disposal.stdout)
    assert (card["cardSerial"], card["outletId"], card["faceValueMinor"]) == (cards[0], "OUT-CLI", 5_000)
    table = wuguan("cards", "disposal", "--outlet", "OUT-CLI", DATABASE_URL=database_url)
    assert table.returncode == 0 and cards[0] in table.stdout and "{" not in table.stdout and "amountMinor" not in table.stdout


def test_api_token_refuses_a_ttl_beyond_seven_days():
    env = {"WUGUAN_API_SECRET": "s" * 32}
    assert wuguan("api-token", "--sub", "ops", "--role", "finance", "--ttl", "604800", **env).returncode == 0
    refused = wuguan("api-token", "--sub", "ops", "--role", "finance", "--ttl", "604801", **env)
    assert refused.returncode == 2 and "--ttl: must be between 1 and 604800" in refused.stderr
