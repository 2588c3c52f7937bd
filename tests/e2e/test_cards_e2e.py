"""Cards end to end: the real cards worker process, the real broker, the real Postgres.

2,000 sold cards (and their outlets' stock) go through the worker: usage, complaints racing
usage of the same cards, repeated complaints, replacements activated at the counter, and
attempted reuse of every voided card. The value on all cards before equals the value after,
net of what customers spent and what faults are credited back: nothing created, nothing lost
(C.STATES, C.REPLACE_NOW, C.ONCE, C.VOID_IS_FINAL, C.NOT_ELIGIBLE, C.STOCK, C.DISPOSAL)."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.decision import validate_decision
from schemas.encoding import encode_event
from schemas.registry import partition_key
from schemas.decision_types import cards as cards_types
from services.cards.domain.projections import disposal_list, outlet_stock, value_ledger
from services.common.db import connect
from services.common.eventstore.verify import verify_chain
from services.common.localstack.publish import publish

from ..kafka_helpers import read_topic

pytestmark = pytest.mark.e2e

OUTLETS = ("OUT-NJ-01", "OUT-NJ-02", "OUT-SZ-01", "OUT-SZ-02")
FACE = {"OUT-NJ-01": 5_000, "OUT-NJ-02": 5_000, "OUT-SZ-01": 3_000, "OUT-SZ-02": 10_000}
PER_OUTLET, SOLD_PER_OUTLET, COMPLAINTS_PER_OUTLET = 2_500, 2_100, 300  # 10,000 cards
START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)


def msg(topic: str, payload: dict, at: datetime) -> tuple[str, bytes, bytes]:
    value = encode_event(topic, payload, event_id=str(uuid.uuid4()), event_time=at, source="e2e-pos")
    return topic, partition_key(topic, payload).encode(), value


def money(fen: int) -> dict:
    return {"amountMinor": fen, "currency": "CNY"}


def inventory(action: str, serial: str, at: datetime, **more) -> tuple[str, bytes, bytes]:
    return msg("cards.inventory.v1", {"action": action, "cardSerial": serial, **more}, at)


def complaint(serial: str, outlet: str, complaint_id: str, at: datetime, wrongly: int | None = None):
    return msg("cards.complaint.v1", {
        "complaintId": complaint_id, "cardSerial": serial, "outletId": outlet, "problem": "chargeDeductedWithoutService",
        "chargeRelated": True, "wronglyConsumed": money(wrongly) if wrongly else None, "receivedBy": "STAFF-1",
    }, at)


async def stored(database_url: str) -> list[dict]:
    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'cards' ORDER BY global_position")
    finally:
        await conn.close()
    return [r["payload"] for r in rows]


async def processed(database_url: str) -> tuple[int, int]:
    """(inputs decided, inputs dead-lettered) by the cards worker so far."""
    conn = await connect(database_url)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM processed_inputs WHERE consumer = 'cards'"),
            await conn.fetchval("SELECT count(*) FROM dead_lettered_inputs WHERE consumer = 'cards'"),
        )
    finally:
        await conn.close()


async def until_processed(workers, n: int, timeout_s: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (done := await processed(workers.database_url))[0] < n:
        assert done[1] == 0, f"{done[1]} inputs dead-lettered"
        if loop.time() > deadline:
            raise AssertionError(f"{done} of {n} cards inputs decided after {timeout_s}s: {workers.log('cards')[-3000:]}")
        await asyncio.sleep(0.3)


def value_everywhere(decisions: list[dict]) -> int:
    ledger = value_ledger(decisions)
    return ledger.on_cards + ledger.in_transit


async def test_cards_value_is_conserved_through_the_real_worker(workers):
    rng = random.Random(5)
    workers.start("cards")
    await workers.wait_healthy("cards")
    started = time.monotonic()

    # 1. stock issued to four outlets; 2,000 cards sold at the counter; some spent
    serials = {o: [f"{o}-{i:04d}" for i in range(PER_OUTLET)] for o in OUTLETS}
    setup = [msg("cards.inventory.v1", {"action": "batchIssued", "batchId": f"B-{o}", "outletId": o,
                                         "cardSerials": serials[o], "faceValue": money(FACE[o]),
                                         "expiresAt": START + timedelta(days=720)}, START) for o in OUTLETS]
    sold = [x for o in OUTLETS for x in serials[o][:SOLD_PER_OUTLET]]
    home = {x: o for o in OUTLETS for x in serials[o]}
    # Batches are keyed by batchId, sales by card: across partitions a sale could overtake its
    # batch (it would be dead-lettered, C.STATES, for replay). Stock is issued before it is sold.
    await publish(workers.bootstrap, setup)
    await until_processed(workers, len(setup))
    setup += [inventory("activated", x, START + timedelta(hours=1), outletId=home[x]) for x in sold]
    early_use = {x: rng.randint(1, FACE[home[x]] // 2) for x in sold[::2]}
    setup += [inventory("used", x, START + timedelta(hours=2), amount=money(fen)) for x, fen in early_use.items()]
    await publish(workers.bootstrap, setup[len(OUTLETS):])
    await until_processed(workers, len(setup))
    assert len(sold) == SOLD_PER_OUTLET * len(OUTLETS)
    before = await stored(workers.database_url)
    value_before = value_everywhere(before)
    assert value_before == sum(FACE[home[x]] for x in sold) - sum(early_use.values())

    # 2. complaints race usage of the same cards (two producers at once), then repeated complaints
    at = START + timedelta(hours=5)
    complained = [x for o in OUTLETS for x in serials[o][:SOLD_PER_OUTLET:6][:COMPLAINTS_PER_OUTLET]]
    where = {x: OUTLETS[(OUTLETS.index(home[x]) + (1 if i % 5 == 0 else 0)) % len(OUTLETS)]
             for i, x in enumerate(complained)}  # one in five at another outlet than the one that sold it
    complaints = [complaint(x, where[x], f"CMP-{x}", at, wrongly=early_use[x] // 2 if x in early_use and i % 4 == 0 else None)
                  for i, x in enumerate(complained)]
    racing_use = [inventory("used", x, at, amount=money(rng.randint(1, FACE[home[x]]))) for x in complained]
    other_use = [inventory("used", x, at, amount=money(rng.randint(1, 500))) for x in sold[1::7]]
    await asyncio.gather(publish(workers.bootstrap, complaints), publish(workers.bootstrap, racing_use + other_use))
    repeats = [complaint(x, where[x], f"CMP-{x}-again", at + timedelta(minutes=30)) for x in complained[::3]]
    await publish(workers.bootstrap, repeats)
    total = len(setup) + len(complaints) + len(racing_use) + len(other_use) + len(repeats)
    await until_processed(workers, total)
    middle = await stored(workers.database_url)
    spent = sum(d["payload"]["amount"]["amountMinor"] for d in middle[len(before):] if d["decisionType"] == cards_types.USAGE_RECORDED)
    credited = sum(d["payload"]["wronglyConsumed"]["amountMinor"] for d in middle if d["decisionType"] == cards_types.CARD_REPLACED)
    assert value_everywhere(middle) == value_before - spent + credited

    replaced = {d["payload"]["oldCardSerial"]: d["payload"] for d in middle if d["decisionType"] == cards_types.CARD_REPLACED}
    assert len(replaced) > len(complained) // 2
    assert credited > 0

    # 3. replacements activated at the counter; every voided card tried again (use and top-up)
    at = START + timedelta(hours=8)
    handovers = [inventory("activated", r["newCardSerial"], at, outletId=r["outletId"]) for r in replaced.values()]
    reuse = [inventory("used", x, at, amount=money(100)) for x in replaced]
    reuse += [inventory("toppedUp", x, at, amount=money(1_000)) for x in list(replaced)[::2]]
    await publish(workers.bootstrap, handovers + reuse)
    total += len(handovers) + len(reuse)
    await until_processed(workers, total)
    elapsed = time.monotonic() - started
    after = await stored(workers.database_url)

    # nothing created, nothing lost: the counter hand-over and the refused reuse move no value
    assert value_everywhere(after) == value_everywhere(middle)
    ledger = value_ledger(after)
    assert ledger.balanced and ledger.in_transit == 0
    assert ledger.on_cards == value_before - spent + credited

    kinds = Counter(d["decisionType"] for d in after)
    # C.ONCE: one card per complaint, the repeated ones got the original back
    assert Counter(d["payload"]["oldCardSerial"] for d in after if d["decisionType"] == cards_types.CARD_REPLACED).most_common(1)[0][1] == 1
    assert kinds[cards_types.REPLACEMENT_DRAWN] == len(replaced) and kinds[cards_types.REPLACEMENT_CARD_ACTIVATED] == len(replaced)
    assert kinds[cards_types.REPLACEMENT_RETURNED] == sum(1 for x in complained[::3] if x in replaced)
    # C.VOID_IS_FINAL: every reuse refused with a fraud alert (plus racing usage decided after the void)
    fraud = [d for d in after if d["decisionType"] == cards_types.VOID_CARD_USE_REFUSED]
    assert len(fraud) >= len(reuse) and all(d["outcome"] == "fraudAlert" for d in fraud)
    # C.NOT_ELIGIBLE: cards the racing usage emptied first were referred, not replaced
    referred = [d for d in after if d["decisionType"] == cards_types.COMPLAINT_REFERRED]
    assert len(referred) + len(replaced) == len(complained)
    assert all(d["reasonCodes"] == ["cardExhausted"] for d in referred)
    # C.DISPOSAL and C.STOCK, from the stored decisions alone
    disposal = disposal_list(after)
    assert sorted(r["cardSerial"] for rows in disposal.values() for r in rows) == sorted(replaced)
    assert all(r["outletId"] == where[r["cardSerial"]] for rows in disposal.values() for r in rows)
    drawn_at = Counter(r["outletId"] for r in replaced.values())
    assert outlet_stock(after) == {o: {FACE[o]: PER_OUTLET - SOLD_PER_OUTLET - drawn_at[o]} for o in OUTLETS}

    assert elapsed < 90, f"took {elapsed:.1f}s"
    conn = await connect(workers.database_url)
    try:
        assert (await verify_chain(conn)).ok
    finally:
        await conn.close()

    # every stored decision is published on cards.decisions.v1 and keeps the contract
    async def all_published():
        records = await read_topic(workers.bootstrap, "cards.decisions.v1", timeout_s=30)
        return records if len(records) >= len(after) else None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (records := await all_published()) is None:
        assert loop.time() < deadline, "decisions not all published"
        await asyncio.sleep(1)
    published = [orjson.loads(r.value) for r in records]
    assert {d["decisionId"] for d in published} == {d["decisionId"] for d in after}
    for decision in published[:: max(1, len(published) // 500)]:
        validate_decision(decision, "cards.decisions.v1")
