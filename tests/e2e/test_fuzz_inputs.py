"""Fuzz every input topic against the three running workers (real broker, real Postgres).

A seeded generator derives, from each topic's published example, malformed and adversarial
events (bad JSON, non-UTF-8 bytes, empty and null values, wrong types, missing and extra
fields, huge numbers, negative money, odd unicode incl. NUL and RTL marks, far-future times,
a reused eventId with different content) and interleaves them with valid events.

The oracle is the contract itself (schemas.validation.decode_message), run here on the same
bytes: whatever it refuses must come back on `<topic>.dlq` from every consuming service with
the same error code, a message, the consumer's name and the original bytes. Whatever it
accepts must be handled: recorded in processed_inputs, or refused by the service's own rule
with a reasoned dead letter. The valid events published after all the bad ones must be
processed, and every worker must stay alive and healthy throughout.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.registry import INPUT_TOPICS, PARTITION_KEY, dlq_topic
from schemas.errors import InvalidEvent
from schemas.validation import decode_message
from services.billing_guard.decider import INPUT_TOPICS as GUARD_TOPICS
from services.cards.decider import INPUT_TOPICS as CARDS_TOPICS
from services.common.db import connect
from services.composition import SERVICES
from services.dunning.decider import INPUT_TOPICS as DUNNING_TOPICS

from ..hostile_inputs import leaves, set_at
from ..kafka_helpers import read_topic

pytestmark = pytest.mark.e2e

SEED = 20261125
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
CONSUMERS = {
    topic: [s for s, topics in (("billing_guard", GUARD_TOPICS), ("dunning", DUNNING_TOPICS), ("cards", CARDS_TOPICS))
            if topic in topics]
    for topic in INPUT_TOPICS
}
# Bad in every way the contract must catch: these must be refused, whatever the topic.
MUST_REJECT = {"bad_json", "truncated_json", "non_utf8", "empty", "null_value", "not_object", "missing_field",
               "extra_envelope_field", "extra_payload_field", "wrong_type", "huge_number", "nul_in_id",
               "wrong_event_type", "bad_schema_version", "bad_time", "overlong_utf8"}


# The example each valid event derives from: one a service processes on a fresh aggregate
# (activating a card nobody issued is refused by C.STATES, rightly).
PREFERRED = {"cards.inventory.v1": "batch-issued.json"}


def example(topic: str) -> dict:
    path = EXAMPLES / topic / PREFERRED[topic] if topic in PREFERRED else sorted((EXAMPLES / topic).glob("*.json"))[0]
    return json.loads(path.read_text())


def fresh(topic: str, rng: random.Random, base: dict | None = None) -> dict:
    """A valid event: the example with a new eventId and a new aggregate (partition-key) id."""
    event = copy.deepcopy(base or example(topic))
    event["eventId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    p = event["payload"]
    tag = f"FZ{rng.getrandbits(32):08x}"
    key_field = "batchId" if topic == "cards.inventory.v1" and p.get("action") == "batchIssued" else PARTITION_KEY[topic]
    p[key_field] = f"{p[key_field]}-{tag}"[:60]
    for field in ("usageId", "originId", "billId", "paymentId", "requestId", "ticketId", "complaintId"):
        if field in p and field != key_field:
            p[field] = f"{p[field]}-{tag}"[:60]
    if topic == "cards.inventory.v1" and p.get("action") == "batchIssued":
        p["cardSerials"] = [f"{s}{tag}"[:40] for s in p["cardSerials"]]
    return event


def key_of(topic: str, event) -> bytes:
    try:
        p = event["payload"]
        field = "batchId" if topic == "cards.inventory.v1" and p.get("action") == "batchIssued" else PARTITION_KEY[topic]
        return str(p[field]).encode()
    except Exception:
        return b"FUZZ"


def _del(doc, path):
    for part in path[:-1]:
        doc = doc[part]
    del doc[path[-1]]


def mutants(topic: str, rng: random.Random) -> list[tuple[str, bytes | None]]:
    """(label, value bytes) of malformed and adversarial events derived from a valid one."""
    out: list[tuple[str, bytes | None]] = []
    good = lambda: fresh(topic, rng)  # noqa: E731
    dumps = lambda d: orjson.dumps(d)  # noqa: E731
    text = dumps(good())
    out.append(("bad_json", b"{" + text[1:rng.randint(5, 40)] + b",,}"))
    out.append(("truncated_json", text[: len(text) // 2]))
    out.append(("non_utf8", text.replace(b'"payload":{', b'"payload":{"\xff\xfe":"\xc3\x28",', 1)))
    out.append(("overlong_utf8", b'{"eventId":"\xc0\xaf' + text[13:]))
    out.append(("empty", b""))
    out.append(("null_value", None))
    out.append(("not_object", rng.choice([b"[]", b"null", b"42", b'"event"', b"true"])))
    d = good()
    del d[rng.choice(["eventId", "eventTime", "eventType", "source", "payload"])]
    out.append(("missing_field", dumps(d)))
    d = good()
    d["unexpected" + rng.choice(["", "Field", "_x"])] = rng.choice([1, "x", None, {"a": 1}])
    out.append(("extra_envelope_field", dumps(d)))
    d = good()
    d["payload"]["fuzzExtra"] = "surplus"
    out.append(("extra_payload_field", dumps(d)))
    d = good()
    payload_leaves = list(leaves(d["payload"]))
    path, value = rng.choice([(p, v) for p, v in payload_leaves if isinstance(v, str)])
    set_at(d["payload"], path, rng.choice([12345, ["list"], {"obj": True}, True]))
    out.append(("wrong_type", dumps(d)))
    d = good()
    ints = [(p, v) for p, v in payload_leaves if isinstance(v, int) and not isinstance(v, bool)]
    if ints:
        set_at(d["payload"], rng.choice(ints)[0], 10**30)
        out.append(("huge_number", json.dumps(d).encode()))  # orjson refuses ints over 64 bits
    d = good()
    d["payload"][PARTITION_KEY[topic] if PARTITION_KEY[topic] in d["payload"] else "batchId"] = "ACC\u0000NUL"
    out.append(("nul_in_id", dumps(d)))
    d = good()
    d["eventType"] = rng.choice([t for t in INPUT_TOPICS if t != topic])
    out.append(("wrong_event_type", dumps(d)))
    d = good()
    d["schemaVersion"] = rng.choice([0, 99, -1])
    out.append(("bad_schema_version", dumps(d)))
    d = good()
    d["eventTime"] = rng.choice(["yesterday", "2024-13-45T25:61:00+08:00", "2024-05-01T10:00:00", ""])
    out.append(("bad_time", dumps(d)))
    # Adversarial but perhaps contract-valid: the contract decides, the services must cope.
    d = good()
    money = [p[:-1] for p, _ in payload_leaves if p and p[-1] == "amountMinor"]
    if money:
        set_at(d["payload"], money[0] + ("amountMinor",), -rng.randint(1, 10**6))
        out.append(("negative_money", dumps(d)))
    texts = [p for p, v in payload_leaves if isinstance(v, str) and not str(v).startswith(("20", "19"))]
    for path in rng.sample(texts, min(3, len(texts))):  # some land in free text, some in ids
        d = good()
        set_at(d["payload"], path, rng.choice(["\u202eRTL\u202c 名字", "\u200f\u200e\u2066x\u2069", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀",
                                             "e\u0301\u0301\u0301", "\ufeff\u2028\ufffd"]))
        out.append(("odd_unicode", dumps(d)))
    d = good()
    set_at(d["payload"], rng.choice(texts), "a\u0000b")
    out.append(("nul_in_text", dumps(d)))
    d = good()
    times = [p for p, v in payload_leaves if isinstance(v, str) and str(v)[:2] in ("19", "20") and "T" in str(v)]
    if times:
        far = rng.choice(["2199-01-01T00:00:00+08:00", "2999-06-30T12:00:00+00:00", "9999-12-31T23:59:59+08:00"])
        for p in times:
            set_at(d["payload"], p, far)
        d["eventTime"] = far
        out.append(("far_future", dumps(d)))
    d = good()
    d["payload"][PARTITION_KEY[topic] if PARTITION_KEY[topic] in d["payload"] else "batchId"] = ""
    out.append(("empty_id", dumps(d)))
    d = good()
    d["payload"][PARTITION_KEY[topic] if PARTITION_KEY[topic] in d["payload"] else "batchId"] = "x" * 100_000
    out.append(("huge_string", dumps(d)))
    return out


def oracle(topic: str, key: bytes | None, value: bytes | None) -> str | None:
    """The contract's verdict on this record: an error code, or None when it is a valid event."""
    try:
        decode_message(topic, key, value)
    except InvalidEvent as exc:
        return exc.code
    except Exception as exc:  # the contract must answer with InvalidEvent, never crash
        return f"CRASH:{type(exc).__name__}"
    return None


async def test_fuzzed_inputs_are_dead_lettered_with_a_reason_and_valid_ones_processed(workers):
    rng = random.Random(SEED)
    for service in SERVICES:
        workers.start(service)
    for service in SERVICES:
        await workers.wait_healthy(service)

    # Per topic: valid, the mutants interleaved with valid events, a reused eventId with other
    # content, and a valid tail that must be processed after all of it.
    plan: list[tuple[str, str, bytes | None, bytes]] = []  # (topic, label, value, key)
    for topic in INPUT_TOPICS:
        first = fresh(topic, rng)
        plan.append((topic, "valid", orjson.dumps(first), key_of(topic, first)))
        for label, value in mutants(topic, rng):
            plan.append((topic, label, value, key_of(topic, first)))
            if rng.random() < 0.5:
                ok = fresh(topic, rng)
                plan.append((topic, "valid", orjson.dumps(ok), key_of(topic, ok)))
        twin = copy.deepcopy(first)
        reason_fields = [p for p, v in leaves(twin["payload"]) if isinstance(v, str) and p[-1] not in (PARTITION_KEY[topic], "batchId", "action")]
        set_at(twin["payload"], reason_fields[-1], "changed-" + str(rng.getrandbits(16)))
        plan.append((topic, "duplicate_id", orjson.dumps(twin), key_of(topic, first)))
        last = fresh(topic, rng)
        plan.append((topic, "valid_tail", orjson.dumps(last), key_of(topic, last)))

    verdicts = [(t, label, value, key, oracle(t, key, value)) for t, label, value, key in plan]
    crashes = [(t, label, code) for t, label, _, _, code in verdicts if code and code.startswith("CRASH")]
    assert crashes == [], f"decode_event crashed instead of refusing: {crashes}"
    accepted_bad = [(t, label) for t, label, _, _, code in verdicts if label in MUST_REJECT and code is None]
    assert accepted_bad == [], f"the contract accepted malformed input: {accepted_bad}"
    invalid_valid = [(t, label, code) for t, label, _, _, code in verdicts if label.startswith("valid") and code]
    assert invalid_valid == [], f"generator bug, a valid event is invalid: {invalid_valid}"

    health_failures: list[tuple[str, int]] = []
    stop = asyncio.Event()

    async def watch_health():
        while not stop.is_set():
            for service in SERVICES:
                status = await asyncio.to_thread(workers.health, service)
                if status != 200:
                    health_failures.append((service, status))
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch_health())
    producer = AIOKafkaProducer(bootstrap_servers=workers.bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    sent = []  # (topic, partition, offset, label, value, verdict)
    try:
        for topic, label, value, key, verdict in verdicts:
            meta = await producer.send_and_wait(topic, key=key, value=value)
            sent.append((topic, meta.partition, meta.offset, label, value, verdict))
    finally:
        await producer.stop()

    expected_letters = {}  # (consumer, topic, partition, offset) -> (label, code or None = service may refuse)
    must_process = set()   # (consumer, topic, partition, offset)
    for topic, partition, offset, label, value, verdict in sent:
        for consumer in CONSUMERS[topic]:
            at = (consumer, topic, partition, offset)
            if verdict is not None:
                expected_letters[at] = (label, verdict)
            elif label == "duplicate_id":
                expected_letters[at] = (label, "duplicate_event_id")
            elif label.startswith("valid"):
                must_process.add(at)

    async def outcome():
        conn = await connect(workers.database_url)
        try:
            processed = {(r["consumer"], r["topic"], r["partition"], r["offset"]) for r in await conn.fetch(
                'SELECT consumer, topic, partition, "offset" FROM processed_inputs')}
            lettered = {(r["consumer"], r["topic"], r["partition"], r["offset"]): r["code"] for r in await conn.fetch(
                'SELECT consumer, topic, partition, "offset", code FROM dead_lettered_inputs')}
        finally:
            await conn.close()
        return processed, lettered

    assert len(expected_letters) > 200 and len(must_process) > 30  # the run proves something
    all_inputs = {(c, t, p, o) for t, p, o, *_ in sent for c in CONSUMERS[t]}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        processed, lettered = await outcome()
        if all_inputs <= processed | set(lettered) or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    stop.set()
    await watcher

    labels = {(c, t, p, o): label for t, p, o, label, *_ in sent for c in CONSUMERS[t]}
    unhandled = sorted((labels[a], a) for a in all_inputs - processed - set(lettered))
    assert unhandled == [], f"{len(unhandled)} inputs neither processed nor dead-lettered: {unhandled[:20]}"
    not_processed = sorted((labels[a], a, lettered.get(a)) for a in must_process - processed)
    assert not_processed == [], f"valid inputs not processed: {not_processed[:20]}"
    wrong = sorted((label, a, lettered.get(a), code) for a, (label, code) in expected_letters.items()
                   if lettered.get(a) != code)
    assert wrong == [], f"dead letters missing or with the wrong code (label, at, got, expected): {wrong[:20]}"
    # Contract-valid adversarial inputs: processed, or refused by a service rule (never a crash code).
    adversarial = {a: labels[a] for a in all_inputs if a not in must_process and a not in expected_letters}
    crashed = sorted((label, a, lettered[a]) for a, label in adversarial.items()
                     if a in lettered and lettered[a] == "processing_error")
    assert crashed == [], f"a decider failed on contract-valid input: {crashed}"

    # Every letter on the DLQ topics carries the reason, the consumer and the original bytes.
    originals = {(t, p, o): value for t, p, o, _, value, _ in sent}
    for topic in INPUT_TOPICS:
        records = await read_topic(workers.bootstrap, dlq_topic(topic), timeout_s=20)
        letters = {}
        for record in records:
            letter = orjson.loads(record.value)
            letters[(letter["consumer"], letter["originalTopic"], letter["partition"], letter["offset"])] = letter
        for at, code in lettered.items():
            if at[1] != topic:
                continue
            letter = letters.get(at)
            assert letter is not None, f"{labels.get(at)} {at} recorded as dead-lettered but not on {dlq_topic(topic)}"
            assert letter["error"]["code"] == code and letter["error"]["message"], letter["error"]
            original = originals[at[1:]]
            if original is None:
                assert letter["value"] is None
            elif letter["valueEncoding"] == "base64":
                assert base64.b64decode(letter["value"]) == original
            else:
                assert letter["value"].encode() == original

    assert health_failures == [], f"/healthz was not 200 during the run: {health_failures[:10]}"
    for service in SERVICES:
        assert workers.processes[service].poll() is None, f"{service} died: {workers.log(service)[-2000:]}"
        assert workers.health(service) == 200
