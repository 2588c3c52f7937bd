"""Signed checkpoints against the attacks the hash chain alone cannot see (issue 14,
A.TAMPER_EVIDENT): the same mutations as an administrator with write access to Postgres would
make, on a store whose checkpoints are on a real broker; `verify --checkpoints` must name each
one with its chain and position, and an untouched store must pass."""
from __future__ import annotations

import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.common.audit import checkpoints
from services.common.audit.signing import generate, key_id, load_private, load_public_keys
from services.common.audit.witness import verify_against
from services.common.db import connect, create_pool
from services.common.eventstore import store
from services.common.eventstore.chain import chain_link
from services.common.eventstore.migrate import migrate
from services.common.eventstore.records import NewEvent
from services.common.eventstore.verify import verify_chain
from services.common.runtime.checkpointer import ChainRefused, Checkpointer
from services.common.topic_reader import read_to_end

pytestmark = pytest.mark.integration

SERVICE = "cards"
BIG, SMALL = f"{SERVICE}/cards.complaint.v1/0", f"{SERVICE}/cards.complaint.v1/1"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def events(chain: str, n: int, start: int) -> list[NewEvent]:
    return [NewEvent(event_id=str(uuid.uuid4()), stream_id=f"s-{chain}-{start + i}", event_type="cards.Tested",
                     service=SERVICE, business_time=T0, payload={"n": start + i, "amountMinor": 100},
                     causation_id=f"input-{start + i}", chain_id=chain) for i in range(n)]


async def grow(conn, chain: str, n: int, start: int) -> None:
    for offset in range(0, n, 250):
        async with conn.transaction():
            await store.append(conn, [(0, [e]) for e in events(chain, min(250, n - offset), start + offset)])


class Signed:
    """A store whose chains have three signed, published checkpoints (at 600, 1,200, 1,540)."""

    def __init__(self, conn, pool, producer, topic, key_path, bootstrap):
        self.conn, self.pool, self.producer, self.topic, self.key_path = conn, pool, producer, topic, key_path
        self.bootstrap = bootstrap
        self.keys = load_public_keys([f"{key_path}.pub"])
        self.checkpointer = Checkpointer(service=SERVICE, pool=pool, producer=producer, key=load_private(key_path),
                                         every_decisions=10_000, every_s=60, topic=topic)

    async def sign(self) -> int:
        seq = await self.checkpointer.checkpoint(self.conn, force=True)
        await self.checkpointer.publish_pending()
        return seq

    async def witness(self, topic: str | None = None, keys=None):
        records = await read_to_end(self.bootstrap, topic or self.topic)
        return await verify_against(self.conn, records, keys or self.keys)

    async def copy_topic(self, transform) -> str:
        """A new topic holding `transform` of this one's values: how a test edits the witness."""
        values = transform([r.value for r in await read_to_end(self.bootstrap, self.topic)])
        topic = f"audit.checkpoints.test-{uuid.uuid4().hex[:8]}"
        for value in values:
            await self.producer.send_and_wait(topic, value, key=SERVICE.encode())
        return topic


@pytest.fixture
async def signed(database_url, kafka_bootstrap, tmp_path):
    conn = await connect(database_url)
    await migrate(conn)
    pool = await create_pool(database_url, role=None)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    generate(tmp_path / "signing.pem")
    s = Signed(conn, pool, producer, f"audit.checkpoints.test-{uuid.uuid4().hex[:8]}", tmp_path / "signing.pem",
               kafka_bootstrap)
    await grow(conn, BIG, 600, 0)
    await grow(conn, SMALL, 40, 0)
    assert await s.sign() == 1
    await grow(conn, BIG, 600, 600)
    assert await s.sign() == 2
    await grow(conn, BIG, 340, 1200)
    assert await s.sign() == 3
    try:
        yield s
    finally:
        await producer.stop()
        await pool.close()
        await conn.close()


@asynccontextmanager
async def as_administrator(conn):
    """A transaction that, like a superuser, gets past the append-only trigger."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        yield


async def cut_tail(conn, chain: str, n: int) -> None:
    """Deletes a chain's last n events, their anchors, and moves its head back: the hash-chain walk
    still passes."""
    async with as_administrator(conn):
        await _cut_tail(conn, chain, n)


async def _cut_tail(conn, chain: str, n: int) -> None:
    head = await conn.fetchval("SELECT seq FROM event_chains WHERE chain_id = $1", chain)
    await conn.execute("DELETE FROM events WHERE chain_id = $1 AND chain_seq > $2", chain, head - n)
    await conn.execute("DELETE FROM chain_anchors WHERE chain_id = $1 AND seq > $2", chain, head - n)
    last = await conn.fetchval("SELECT hash FROM events WHERE chain_id = $1 AND chain_seq = $2", chain, head - n)
    await conn.execute("UPDATE event_chains SET seq = $2, hash = $3 WHERE chain_id = $1", chain, head - n, last)


async def rewrite(conn, chain: str) -> None:
    """Changes every event of a chain and recomputes every hash, as the project's own code would."""
    async with as_administrator(conn):
        await _rewrite(conn, chain)


async def _rewrite(conn, chain: str) -> None:
    rows = await conn.fetch(f"SELECT {store.SELECT_COLUMNS} FROM events WHERE chain_id = $1 ORDER BY chain_seq", chain)
    prev = store.chain_genesis(chain)
    for row in rows:
        event = store._stored(row)._replace(payload={**row["payload"], "amountMinor": 1})
        link = chain_link(prev, event.global_position, event.stream_version, event)
        await conn.execute("UPDATE events SET payload = $2, prev_hash = $3, hash = $4 WHERE global_position = $1",
                           event.global_position, event.payload, prev, link)
        prev = link
    await conn.execute("UPDATE event_chains SET hash = $2 WHERE chain_id = $1", chain, prev)


async def assert_next_checkpoint_leaves_out(signed, chain: str, why: str, caplog) -> None:
    """The next checkpoint refuses the chain at once, and signs the others all the same."""
    assert await signed.checkpointer.checkpoint(signed.conn, force=True) == 4
    message = await signed.conn.fetchval("SELECT message FROM audit_checkpoints WHERE seq = 4")
    assert chain not in [h.chain_id for h in checkpoints.parse(message).chains()]
    assert f"checkpoint {SERVICE}#4 leaves out chain {chain}" in caplog.text and why in caplog.text


async def test_an_untouched_store_passes(signed):
    report = await signed.witness()
    assert report.ok, report.problems
    assert (report.checkpoints, report.chains, report.events) == (3, 2, 1580)


@pytest.mark.parametrize("n", [1, 1000])
async def test_a_truncated_tail_is_found(signed, n, caplog):
    await cut_tail(signed.conn, BIG, n)
    assert (await verify_chain(signed.conn)).ok  # invisible to the chain walk alone
    report = await signed.witness()
    assert report.problems == [f"chain {BIG}: truncated at position {1540 - n}: checkpoint {SERVICE}#3 signed 1540"
                               f" events (events {1541 - n}..1540 are missing)"]
    await assert_next_checkpoint_leaves_out(signed, BIG, "removed", caplog)


@pytest.mark.parametrize("removed, why", [(1545, "event 1545 does not follow on from event 1544"),
                                          (1550, "event 1550 is missing")])
async def test_events_removed_since_the_last_checkpoint_leave_their_chain_out_of_the_next(signed, removed, why,
                                                                                           caplog):
    """The checkpointer reads each chain's events since its last checkpoint, all its chains in one
    pass of the log, each checked to follow on from the one before: one removed from among them,
    or from their end with the head left as it was, leaves the chain out, and the others signed."""
    await grow(signed.conn, BIG, 10, 1540)  # events 1541..1550, not signed yet
    await grow(signed.conn, SMALL, 10, 40)
    async with as_administrator(signed.conn):
        await signed.conn.execute("DELETE FROM events WHERE chain_id = $1 AND chain_seq = $2", BIG, removed)
    await assert_next_checkpoint_leaves_out(signed, BIG, why, caplog)
    message = await signed.conn.fetchval("SELECT message FROM audit_checkpoints WHERE seq = 4")
    assert [(h.chain_id, h.tree_size) for h in checkpoints.parse(message).chains()] == [(SMALL, 50)]


async def test_a_consistent_rewrite_is_found(signed, caplog):
    await rewrite(signed.conn, BIG)
    assert (await verify_chain(signed.conn)).ok  # every hash recomputed: the walk passes
    report = await signed.witness()
    assert report.problems == [f"chain {BIG}: its first 600 events differ from checkpoint {SERVICE}#1:"
                               " rewritten at a position after 0 and at or before 600"]
    await assert_next_checkpoint_leaves_out(signed, BIG, "rewritten", caplog)


async def test_a_rewrite_after_a_checkpoint_is_placed_between_two(signed):
    rows = await signed.conn.fetch("SELECT global_position FROM events WHERE chain_id = $1 AND chain_seq > 1000"
                                   " ORDER BY chain_seq", BIG)
    async with as_administrator(signed.conn):
        # Every bit of the first byte flipped: setting it to 0 left a hash that began with 0
        # unchanged, and the test failed once in 256 runs (its hashes follow random event ids).
        await signed.conn.execute("UPDATE events SET hash = set_byte(hash, 0, get_byte(hash, 0) # 255)"
                                  " WHERE global_position = $1", rows[0]["global_position"])
    report = await signed.witness()
    assert report.problems == [f"chain {BIG}: its first 1200 events differ from checkpoint {SERVICE}#2:"
                               " rewritten at a position after 600 and at or before 1200"]


async def test_swapped_checkpoints_are_found(signed):
    topic = await signed.copy_topic(lambda values: [values[0], values[2], values[1]])
    problems = (await signed.witness(topic)).problems
    assert f"checkpoint {SERVICE}#3 follows {SERVICE}#1: checkpoints 2..2 are missing or out of order" in problems
    assert f"checkpoint {SERVICE}#3 does not name its predecessor's digest (reordered or forged)" in problems


async def test_a_checkpoint_forged_with_another_key_is_found(signed, tmp_path):
    generate(tmp_path / "other.pem")
    other = load_private(tmp_path / "other.pem")
    last = checkpoints.parse((await read_to_end(signed.bootstrap, signed.topic))[-1].value)
    forged = checkpoints.build(service=SERVICE, seq=4, previous=checkpoints.digest(last.body),
                               signed_at="2026-12-06T00:00:00Z", key=other, key_id=key_id(other.public_key()),
                               chains=[])
    impostor = checkpoints.build(service=SERVICE, seq=4, previous=checkpoints.digest(last.body),
                                 signed_at="2026-12-06T00:00:00Z", key=other,
                                 key_id=key_id(load_private(signed.key_path).public_key()), chains=[])
    topic = await signed.copy_topic(lambda values: values + [forged, impostor])
    assert (await signed.witness(topic)).problems == [
        f"checkpoint {SERVICE}#4 is signed by unknown key {key_id(other.public_key())!r}",
        f"checkpoint {SERVICE}#4: the signature does not verify (forged or altered)",
    ]


async def test_a_deleted_latest_checkpoint_is_found(signed):
    topic = await signed.copy_topic(lambda values: values[:-1])
    assert (await signed.witness(topic)).problems == [
        f"checkpoint {SERVICE}#3 was acknowledged by the broker but is missing from the topic (deleted?)"]


async def test_rolled_back_tables_are_refused_and_a_restart_over_them_forks(signed):
    """An administrator rewrites a chain and rolls the checkpointer's tables back to before it was
    signed: the running checkpointer refuses (it remembers what it signed); one restarted over the
    tables signs a second #3, which the witness reports as a fork."""
    await rewrite(signed.conn, BIG)
    await signed.conn.execute("DELETE FROM audit_chain_trees WHERE chain_id = $1", BIG)
    await signed.conn.execute("UPDATE audit_checkpoint_heads SET seq = 2, digest = $1",
                              await signed.conn.fetchval("SELECT digest FROM audit_checkpoints WHERE seq = 2"))
    await signed.conn.execute("DELETE FROM audit_checkpoints WHERE seq = 3")
    with pytest.raises(ChainRefused, match="no longer say what it signed"):
        await signed.checkpointer.checkpoint(signed.conn, force=True)
    restarted = Checkpointer(service=SERVICE, pool=signed.pool, producer=signed.producer,
                             key=load_private(signed.key_path), every_decisions=10_000, every_s=3600, topic=signed.topic)
    assert await restarted.checkpoint(signed.conn, force=True) == 3
    await restarted.publish_pending()
    problems = (await signed.witness()).problems
    assert f"fork: two different checkpoints {SERVICE}#3" in problems
    assert any(p.startswith(f"chain {BIG}: its first 600 events differ from checkpoint {SERVICE}#1") for p in problems)


async def test_an_edited_stored_tree_is_refused_at_start(signed):
    await signed.conn.execute("UPDATE audit_chain_trees SET root = $2 WHERE chain_id = $1", SMALL, bytes(32))
    restarted = Checkpointer(service=SERVICE, pool=signed.pool, producer=signed.producer,
                             key=load_private(signed.key_path), every_decisions=10_000, every_s=3600, topic=signed.topic)
    with pytest.raises(ChainRefused, match=f"chain {SMALL}: its stored tree is not the one checkpoint"):
        await restarted.checkpoint(signed.conn, force=True)


async def test_a_chain_outside_the_services_partitions_is_not_signed(signed):
    """An administrator invents a chain full of decisions: it is refused, the real ones are signed."""
    invented = f"{SERVICE}/cards.complaint.v1/7"
    await grow(signed.conn, invented, 5, 0)
    await grow(signed.conn, SMALL, 3, 40)
    checkpointer = Checkpointer(service=SERVICE, pool=signed.pool, producer=signed.producer,
                                key=load_private(signed.key_path), every_decisions=10_000, every_s=3600,
                                topics={"cards.complaint.v1"}, partitions=2, topic=signed.topic)
    assert await checkpointer.checkpoint(signed.conn, force=True) == 4
    message = await signed.conn.fetchval("SELECT message FROM audit_checkpoints WHERE seq = 4")
    assert [h.chain_id for h in checkpoints.parse(message).chains()] == [SMALL]


async def test_an_event_removed_from_inside_a_signed_tree_is_named(signed):
    async with as_administrator(signed.conn):
        await signed.conn.execute("DELETE FROM events WHERE chain_id = $1 AND chain_seq = 700", BIG)
    assert (await signed.witness()).problems == [
        f"chain {BIG}: events 700..700 are missing (removed from inside the tree checkpoint {SERVICE}#3 signed)"]


async def test_a_topic_without_checkpoints_does_not_pass(signed):
    topic = await signed.copy_topic(lambda values: [])
    problems = (await signed.witness(topic)).problems
    assert f"service {SERVICE} has events but no signed checkpoint on the topic" in problems


def wuguan(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services", *args], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_the_cli_reports_tampering_and_exits_1(signed, database_url):
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": signed.bootstrap,
           "WUGUAN_CHECKPOINT_PUBLIC_KEYS": f"{signed.key_path}.pub", "PATH": "/usr/bin:/bin"}
    clean = wuguan("verify", "--checkpoints", "--topic", signed.topic, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK: 3 signed checkpoints" in clean.stdout
    await cut_tail(signed.conn, SMALL, 1)
    cut = wuguan("verify", "--checkpoints", "--topic", signed.topic, env=env)
    assert cut.returncode == 1
    assert f"TAMPERED: chain {SMALL}: truncated at position 39" in cut.stdout


async def test_a_proof_verifies_offline_and_fails_after_any_change(signed, database_url, tmp_path):
    decision = await signed.conn.fetchval("SELECT event_id::text FROM events WHERE chain_id = $1 AND chain_seq = 777",
                                          BIG)
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    made = wuguan("prove", decision, "--out", str(tmp_path / "proof.json"), env=env)
    assert made.returncode == 0, made.stderr
    offline = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
               "PATH": "/usr/bin:/bin"}
    checked = wuguan("check-proof", str(tmp_path / "proof.json"), "--public-key", f"{signed.key_path}.pub", env=offline)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"VALID: decision {decision}" in checked.stdout and "event 777 of 1540" in checked.stdout
    proof = orjson.loads((tmp_path / "proof.json").read_bytes())
    entry = proof["entry"]
    for at in range(0, len(entry), max(1, len(entry) // 25)):  # a byte changed anywhere in the decision
        altered = {**proof, "entry": entry[:at] + chr(ord(entry[at]) ^ 1) + entry[at + 1:]}
        (tmp_path / "altered.json").write_bytes(orjson.dumps(altered))
        result = wuguan("check-proof", str(tmp_path / "altered.json"), "--public-key", f"{signed.key_path}.pub",
                        env=offline)
        assert result.returncode == 1, (at, result.stdout)
        assert "INVALID" in result.stdout
    other_prev = format(int(proof["prevHash"], 16) ^ 1, "064x")
    for change in ({"prevHash": other_prev}, {"prevHash": proof["prevHash"][2:]}, {"leafIndex": proof["leafIndex"] + 1},
                   {"treeSize": proof["treeSize"] - 1}, {"keyId": "0" * 16}, {"inclusionPath": proof["inclusionPath"][1:]},
                   {"proofs": []}):
        (tmp_path / "altered.json").write_bytes(orjson.dumps({**proof, **change}))
        result = wuguan("check-proof", str(tmp_path / "altered.json"), "--public-key", f"{signed.key_path}.pub",
                        env=offline)
        assert result.returncode == 1 and "INVALID" in result.stdout, (change, result.stdout)


async def test_the_checkpointer_signs_when_due_by_count(signed):
    signed.checkpointer.every_decisions, signed.checkpointer.every_s = 100, 3600  # by count, not by time
    assert await signed.checkpointer.checkpoint(signed.conn) is None  # nothing new
    await grow(signed.conn, SMALL, 99, 40)
    assert await signed.checkpointer.checkpoint(signed.conn) is None
    await grow(signed.conn, SMALL, 1, 139)
    assert await signed.checkpointer.checkpoint(signed.conn) == 4
    await signed.checkpointer.publish_pending()
    assert (await signed.witness()).ok
