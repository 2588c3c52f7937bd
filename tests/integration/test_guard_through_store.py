"""billing_guard on the real runtime (BatchProcessor, broker, Postgres): CP2 rating with the
catalogue stream, CP3 dedup / sanity DLQ / sequence-gap timer through Kafka, D.AUTO_CREDIT,
D.HOLD on the account stream, and a replay that changes nothing (A.REPLAY)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.encoding import encode_event
from schemas.registry import REPARTITION_TOPICS
from services.common.runtime.decision_inputs import NOTE_ENVELOPE, note_of
from services.common.eventstore.verify import verify_chain

from services.billing_guard.worker import DEFINITION

from ..kafka_helpers import read_topic
from .runtime_harness import RuntimeHarness

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Harness(RuntimeHarness):
    def __init__(self, bootstrap, database_url):
        super().__init__(bootstrap, database_url, DEFINITION)


def ev(topic: str, payload: dict, when: datetime) -> tuple[str, bytes]:
    return topic, encode_event(topic, payload, event_id=uuid.uuid4(), event_time=when, source="test-bss")


def rates(per_min: int) -> list[dict]:
    return [{"usageType": u, "destinationClass": d, "ratePerMinuteMinor": per_min, "incrementSeconds": 60,
             "connectFeeMinor": 0} for u in ("voice", "sms", "data") for d in ("local", "domestic", "international", "roaming")]


def tariff(tariff_id: str, version: int, effective: datetime, per_min: int, at: datetime, **extra):
    return ev("billing.tariff.v1", {"tariffId": tariff_id, "version": version, "name": "plan",
                                    "publishedAt": at, "effectiveFrom": effective, "rates": rates(per_min), **extra}, at)


def cdr(account, switch, seq, start, seconds=120, origin=None, usage_id=None):
    return ev("billing.cdr.v1", {
        "usageId": usage_id or f"U-{uuid.uuid4().hex[:10]}", "switchId": switch, "originId": origin or f"O-{seq}",
        "sequenceNumber": seq, "accountId": account, "callingNumber": "13812345678", "calledNumber": "13987654321",
        "usageType": "voice", "destinationClass": "local", "startDateTime": start,
        "endDateTime": start + timedelta(seconds=max(seconds, 0)), "durationSeconds": seconds, "collection": "offline"},
        start + timedelta(minutes=2))


@pytest.fixture
async def harness(kafka_bootstrap, database_url):
    async with Harness(kafka_bootstrap, database_url) as h:
        yield h


async def test_CP2_CP3_rating_dedup_sanity_gap_and_D_AUTO_CREDIT_through_the_store(harness):
    account, switch, plan = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}", "T-STD"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff(plan, 900, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    # Increase without refs: rejected, v901 not in the catalogue.
    await harness.feed(tariff(plan, 901, t0 + timedelta(hours=1), 30, t0 - timedelta(hours=1)))
    await harness.feed(tariff(plan, 902, t0 + timedelta(hours=1), 6, t0 - timedelta(hours=1)))
    first = cdr(account, switch, 1, t0, origin="O-1")
    copy = cdr(account, switch, 1, t0, origin="O-1")
    copy_id = orjson.loads(copy[1])["payload"]["usageId"]
    await harness.feed(first, copy, cdr(account, switch, 2, t0 + timedelta(hours=2)),
                       cdr(account, switch, 5, t0 + timedelta(hours=2)), cdr(account, switch, 6, t0, seconds=-1))
    decisions = await harness.stream(f"guard-account-{account}")
    rated = [d for d in decisions if d["decisionType"] == "guard.CdrRated"]
    assert [(d["payload"]["tariffVersion"], d["payload"]["amountMinor"]) for d in rated] == [(900, 20), (902, 12), (902, 12)]
    assert [d["decisionType"] for d in decisions].count("guard.DuplicateCdrSuppressed") == 1
    catalogue = await harness.stream("guard-tariffs")
    assert [d["outcome"] for d in catalogue[-3:]] == ["accepted", "rejected", "accepted"]
    letters = [orjson.loads(r.value) for r in await read_topic(harness.bootstrap, "billing.cdr.v1.dlq")]
    assert any(l["error"]["code"] == "CP3.SANITY" and "NEGATIVE_DURATION" in l["error"]["message"] for l in letters)

    # The switch's sequence is judged when the charges come back keyed by switch (the relay's
    # repartition route); the gap 3..4 is due at once: its grace period ended in the past.
    assert await harness.relay() == 3
    assert await harness.fire_due_timers() >= 1
    alerts = [d for d in await harness.stream(f"guard-switch-{switch}") if d["decisionType"] == "guard.SequenceGapAlert"]
    assert [a["payload"]["missingRanges"] for a in alerts] == [[{"from": 3, "to": 4}]]

    await harness.feed(ev("billing.dispute.v1", {
        "ticketId": "K-1", "ticketType": "Bill Dispute", "action": "open", "accountId": account, "billId": "B-1",
        "disputedItems": [copy_id], "disputedAmount": {"amountMinor": 20, "currency": "CNY"},
        "reason": "charged twice", "channel": "hotline", "actorId": "agent-7"}, t0 + timedelta(hours=3)))
    tail = (await harness.stream(f"guard-account-{account}"))[-3:]
    assert [d["decisionType"] for d in tail] == ["guard.DisputeOpened", "guard.DisputeAutoCredited", "guard.CreditNoteIssued"]
    assert tail[0]["payload"]["hold"]["amountMinor"] == 20 and tail[2]["payload"]["amountMinor"] == 20
    assert all(d["policyVersion"].startswith("guard-") for d in tail)
    async with harness.pool.acquire() as conn:
        assert (await verify_chain(conn)).ok


async def test_A_REPLAY_redelivered_cdrs_change_nothing(harness):
    account = f"A-{uuid.uuid4().hex[:8]}"
    await harness.feed(tariff("T-STD", 1, NOW - timedelta(days=1), 10, NOW - timedelta(days=2)))
    batch = [cdr(account, "SW-R", n, NOW - timedelta(hours=1)) for n in range(1, 4)]
    await harness.feed(*batch)
    before = await harness.stream(f"guard-account-{account}")
    await harness.feed(*batch)
    assert await harness.stream(f"guard-account-{account}") == before and len(before) == 3


async def test_D_EVIDENCE_a_dispute_sees_the_charges_decided_before_it_in_the_same_batch(harness):
    """The charges view (account stream folded with every charge body) is read for disputes only;
    a CDR decided earlier in the batch must reach a view another input of the batch loaded."""
    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 950, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(cdr(account, switch, 1, t0, usage_id="U-EARLIER"))

    def dispute(ticket, items, when):
        return ev("billing.dispute.v1", {
            "ticketId": ticket, "ticketType": "Bill Dispute", "action": "open", "accountId": account,
            "billId": "B-9", "disputedItems": items, "disputedAmount": {"amountMinor": 10, "currency": "CNY"},
            "reason": "not mine", "channel": "hotline", "actorId": "agent-7"}, when)

    await harness.feed(dispute("K-A", ["U-EARLIER"], t0 + timedelta(hours=1)),
                       cdr(account, switch, 2, t0 + timedelta(minutes=5), usage_id="U-IN-BATCH"),
                       dispute("K-B", ["U-IN-BATCH"], t0 + timedelta(hours=1)))
    opened = {d["payload"]["ticketId"]: d["payload"]["evidence"] for d in await harness.stream(f"guard-account-{account}")
              if d["decisionType"] == "guard.DisputeOpened"}
    assert [i["usageId"] for i in opened["K-A"]["items"]] == ["U-EARLIER"]
    assert [i["usageId"] for i in opened["K-B"]["items"]] == ["U-EARLIER", "U-IN-BATCH"]
    async with harness.pool.acquire() as conn:
        assert not await conn.fetchval("SELECT count(*) FROM events WHERE stream_id LIKE '%#%'")


async def test_CP3_DEDUP_the_claim_outlives_the_workers_memory_and_two_racing_workers_charge_once(harness):
    """The dedup key is a unique claim in the store, not in the cached account state: a copy that
    arrives after a restart (empty cache) is still suppressed, and two workers deciding copies of
    one CDR at the same time charge it once."""
    from services.common.runtime.batch_processor import BatchProcessor

    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 960, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(cdr(account, switch, 1, t0, origin="O-1", usage_id="U-FIRST"))
    harness.processor.cache.clear()  # what a restarted worker has
    await harness.feed(cdr(account, switch, 1, t0, origin="O-1", usage_id="U-AFTER-RESTART"))
    kinds = [(d["decisionType"], d["payload"]["usageId"]) for d in await harness.stream(f"guard-account-{account}")]
    assert kinds == [("guard.CdrRated", "U-FIRST"), ("guard.DuplicateCdrSuppressed", "U-AFTER-RESTART")]
    async with harness.pool.acquire() as conn:
        claim = await conn.fetchrow("SELECT value, position FROM unique_claims WHERE claim_key = $1", f"cdr:{switch}|O-1")
        rated_at = await conn.fetchval("SELECT global_position FROM events WHERE event_type = 'guard.CdrRated'"
                                       " AND payload->'payload'->>'usageId' = 'U-FIRST'")
    assert (claim["value"], claim["position"]) == ("U-FIRST", rated_at)

    other = BatchProcessor(decider=harness.processor.decider, policy=harness.processor.policy, pool=harness.pool,
                           dead_letters=harness.processor.dead_letters, service_version="test")
    accounts = [f"A-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    copies = [cdr(a, switch, 2, t0, origin="O-2", usage_id=f"U-RACE-{i}") for i, a in enumerate(accounts)]
    await asyncio.gather(harness.processor.process([harness.message(*copies[0])]),
                         other.process([harness.message(*copies[1])]))
    decided = [d for a in accounts for d in await harness.stream(f"guard-account-{a}")]
    assert sorted(d["decisionType"] for d in decided) == ["guard.CdrRated", "guard.DuplicateCdrSuppressed"]


async def test_A_TAMPER_EVIDENT_verify_checks_the_unique_claims_against_the_decisions(harness):
    """A claim is outside the hash chain (the decision's claim_key and claim_value columns, or a
    row of unique_claim_rows from before migration 0010): a whole walk recomputes each claim from
    the decision that made it and reports a deleted, altered or forged claim."""
    from services.billing_guard.decider import GuardDecider
    from services.common.db import connect

    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 970, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(*[cdr(account, switch, n, t0, origin=f"O-{n}", usage_id=f"U-V{n}") for n in (1, 2, 3)])
    claims = {"billing_guard": GuardDecider().claims_made}
    admin = await connect(harness.database_url)  # the login user: the services' role may not edit claims
    try:
        assert (await verify_chain(admin, claims_made=claims)).ok
        async with admin.transaction():  # O-3's claim kept as a row, as before migration 0010: still found
            await admin.execute("SET LOCAL session_replication_role = replica")  # past the append-only trigger
            moved = await admin.fetchrow("UPDATE events SET claim_key = NULL, claim_value = NULL WHERE claim_key = $1"
                                         " RETURNING global_position", f"cdr:{switch}|O-3")
            await admin.execute("INSERT INTO unique_claim_rows (service, claim_key, value, position)"
                                " VALUES ('billing_guard', $1, 'U-V3', $2)", f"cdr:{switch}|O-3", moved[0])
        report = await verify_chain(admin, claims_made=claims)
        assert report.ok and report.claims_checked["billing_guard"] == 3
        async with admin.transaction():
            await admin.execute("SET LOCAL session_replication_role = replica")
            await admin.execute("UPDATE events SET claim_key = NULL, claim_value = NULL WHERE claim_key = $1",
                                f"cdr:{switch}|O-1")
            await admin.execute("UPDATE events SET claim_value = 'U-OTHER' WHERE claim_key = $1", f"cdr:{switch}|O-2")
        await admin.execute("INSERT INTO unique_claim_rows (service, claim_key, value, position)"
                            " VALUES ('billing_guard', 'cdr:SW-FORGED|O-9', 'U-FORGED', 1)")
        report = await verify_chain(admin, claims_made=claims)
        assert any("claim is missing" in p for p in report.problems)
        assert any("claim was altered" in p for p in report.problems)
        assert any("made by no decision" in p for p in report.problems)
        assert (await verify_chain(admin)).ok  # the chain itself is intact
    finally:
        await admin.close()


async def test_A_TAMPER_EVIDENT_a_walk_of_one_service_judges_that_service_s_claims_only(harness):
    """A worker walks its own service's chains (runtime/integrity.py): another service's claims
    are that service's walk's to judge, and `wuguan verify`, which walks every chain, judges all."""
    from services.billing_guard.decider import GuardDecider
    from services.common.db import connect

    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 970, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(cdr(account, switch, 1, t0, origin="O-1", usage_id="U-S1"))
    both = {"billing_guard": GuardDecider().claims_made, "cards": lambda decision: []}
    admin = await connect(harness.database_url)
    try:
        await admin.execute("INSERT INTO unique_claim_rows (service, claim_key, value, position)"
                            " VALUES ('cards', $1, 'U-NONE', 1)", f"card:{uuid.uuid4().hex}")
        scoped = await verify_chain(admin, claims_made=both, service="billing_guard")
        assert scoped.ok and scoped.claims_checked == {"billing_guard": 1}
        assert any("made by no decision" in p for p in (await verify_chain(admin, claims_made=both)).problems)
    finally:
        await admin.close()


async def test_CP3_SEQUENCE_GAP_one_stored_decision_per_cdr_and_the_switch_kept_as_a_snapshot(harness):
    """Issue 13: a CDR in sequence stores its charge only; its switch's sequence moves when the
    charge comes back keyed by switch, kept as one snapshot row; a gap opened and closed are
    stored decisions; notes read back twice change nothing, and none is a processed-input row."""
    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 980, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(*[cdr(account, switch, n, t0 + timedelta(minutes=n)) for n in (1, 2, 3, 6)])
    async with harness.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM processed_inputs")
    assert await harness.relay() == 4
    recorded = await harness.stream(f"guard-switch-{switch}")
    assert [(d["outcome"], d["payload"]["sequenceNumber"]) for d in recorded] == [("gapOpened", 6)]
    await harness.feed(*[cdr(account, switch, n, t0 + timedelta(minutes=n)) for n in (4, 5)])
    assert await harness.relay() == 2
    recorded = await harness.stream(f"guard-switch-{switch}")
    assert [d["outcome"] for d in recorded] == ["gapOpened", "gapClosed"]
    charges = await harness.stream(f"guard-account-{account}")
    assert sorted(d["payload"]["sequenceNumber"] for d in charges if d["decisionType"] == "guard.CdrRated") == [
        1, 2, 3, 4, 5, 6]
    async with harness.pool.acquire() as conn:
        snapshot = await conn.fetchrow("SELECT version, state FROM stream_snapshots WHERE stream_id = $1",
                                       f"guard-switch-{switch}")
        processed = await conn.fetchval("SELECT count(*) FROM processed_inputs")
    assert snapshot["version"] == 2 and snapshot["state"]["highWater"] == 6 and snapshot["state"]["gaps"] == []
    assert processed == before + 2  # the two CDRs; no note is a processed input
    harness.read_back.clear()  # every note again, as after a crash before the offsets were committed
    assert await harness.relay() >= 6  # the broker is shared: other tests' notes come back too
    assert await harness.stream(f"guard-switch-{switch}") == recorded
    async with harness.pool.acquire() as conn:
        assert await conn.fetchrow("SELECT version, state FROM stream_snapshots WHERE stream_id = $1",
                                   f"guard-switch-{switch}") == snapshot
        assert (await verify_chain(conn)).ok


async def test_CP3_SEQUENCE_GAP_a_note_carries_the_charge_s_identity_and_number_not_its_body(harness):
    """A.PRIVACY and issue 13: the note on the repartition topic is the routed charge's identity
    (what its reader is known by and decides on), not the whole charge: no phone number leaves
    for that topic, and a note is under a third of the charge's size."""
    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 981, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(cdr(account, switch, 7, t0))
    assert await harness.relay() >= 1
    route = REPARTITION_TOPICS["billing_guard"]
    notes = [n for r in await read_topic(harness.bootstrap, route.topic) if r.key == switch.encode()
             for n in orjson.loads(r.value)]
    charge, = [d for d in await harness.stream(f"guard-account-{account}") if d["decisionType"] == "guard.CdrRated"]
    assert notes == [note_of(charge, route.note_fields)]
    assert set(notes[0]) == {*NOTE_ENVELOPE, "payload"} and set(notes[0]["payload"]) == set(route.note_fields)
    assert "13812345678" not in orjson.dumps(notes).decode()
    assert len(orjson.dumps(notes[0])) * 3 < len(orjson.dumps(charge))
    assert await harness.stream(f"guard-switch-{switch}") == []  # in sequence: decided into its snapshot alone
    async with harness.pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM stream_snapshots WHERE stream_id = $1", f"guard-switch-{switch}")
    assert state["highWater"] == 7


async def test_CP3_SEQUENCE_GAP_a_note_message_with_an_unreadable_element_is_dead_lettered_and_the_rest_decided(harness):
    """CONTRACT.NOTHING_LOST on the repartition topic: the message goes to its .dlq with the
    reason, and the good notes beside the bad element still move their switch."""
    account, switch = f"A-{uuid.uuid4().hex[:8]}", f"SW-{uuid.uuid4().hex[:6]}"
    t0 = NOW - timedelta(hours=6)
    await harness.feed(tariff("T-STD", 990, t0 - timedelta(days=1), 10, t0 - timedelta(days=2)))
    await harness.feed(*[cdr(account, switch, n, t0 + timedelta(minutes=n)) for n in (1, 2)])
    charges = [d for d in await harness.stream(f"guard-account-{account}") if d["decisionType"] == "guard.CdrRated"]
    route = "wuguan.billing_guard.switch-sequence"
    value = orjson.dumps([charges[0], {"decisionId": "not a stored decision"}, charges[1]])
    await harness.process([harness.message(route, value, key=switch.encode())])
    async with harness.pool.acquire() as conn:
        letter = await conn.fetchrow("SELECT code, message FROM dead_lettered_inputs WHERE topic = $1 AND \"offset\" = $2",
                                     route, harness.offset)
        snapshot = await conn.fetchval("SELECT state FROM stream_snapshots WHERE stream_id = $1", f"guard-switch-{switch}")
    assert letter["code"] == "envelope_invalid" and "not a stored decision" in letter["message"]
    assert snapshot["highWater"] == 2 and snapshot["gaps"] == []
    letters = [orjson.loads(r.value) for r in await read_topic(harness.bootstrap, f"{route}.dlq")]
    assert any(l["error"]["code"] == "envelope_invalid" for l in letters)
