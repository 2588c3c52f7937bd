"""`wuguan explain-charge --proof`: the story of one charge comes with a signed inclusion proof of
each decision it rests on, which a customer disputing the charge checks offline (issue 14,
CP2.TRACEABLE, A.TAMPER_EVIDENT)."""
from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.billing_guard.worker import DEFINITION
from services.common.audit.signing import generate, load_private
from services.common.db import connect, create_pool
from services.common.runtime.checkpointer import Checkpointer

from .guard_inputs import SHANGHAI, cdr, tariff, uid
from .runtime_harness import RuntimeHarness
from .test_cli import wuguan

pytestmark = pytest.mark.integration


def at(m, d, hh=10) -> datetime:
    return datetime(2026, m, d, hh, tzinfo=SHANGHAI)


async def sign_everything(database_url: str, bootstrap: str, key_path) -> None:
    pool = await create_pool(database_url, role=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        checkpointer = Checkpointer(service="billing_guard", pool=pool, producer=producer, key=load_private(key_path),
                                    every_decisions=10_000, every_s=60)
        async with pool.acquire() as conn:
            assert await checkpointer.checkpoint(conn, force=True) == 1
        assert await checkpointer.publish_pending() == 1
    finally:
        await producer.stop()
        await pool.close()


async def test_explain_charge_writes_proofs_that_check_offline(kafka_bootstrap, database_url, tmp_path):
    account, switch = uid("A"), uid("SW")
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION, timer_clock="business") as guard:
        await guard.feed(tariff("T-STD", 1, at(1, 1, 0), 10, at(1, 1, 0) - timedelta(days=10)))
        await guard.feed(cdr(account, switch, 1, at(3, 5), usage_id="U-PROVE"))
    generate(tmp_path / "key.pem")
    await sign_everything(database_url, kafka_bootstrap, tmp_path / "key.pem")

    made = wuguan("explain-charge", "U-PROVE", "--proof", str(tmp_path / "charge.json"), DATABASE_URL=database_url)
    assert made.returncode == 0, made.stderr
    bundle = orjson.loads((tmp_path / "charge.json").read_bytes())
    assert bundle["story"]["charge"]["amountMinor"] > 0
    proven = [p["decisionId"] for p in bundle["proofs"]]
    assert bundle["story"]["charge"]["decisionId"] in proven
    assert bundle["story"]["tariff"]["acceptance"]["decisionId"] in proven  # what the charge rests on, too

    offline = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    checked = wuguan("check-proof", str(tmp_path / "charge.json"), "--public-key", str(tmp_path / "key.pem.pub"),
                     **offline)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"VALID: decision {bundle['story']['charge']['decisionId']} (guard.CdrRated" in checked.stdout
    assert checked.stdout.count("VALID: decision") == len(proven)

    # the charge's amount changed by one fen in the proven bytes: the proof no longer holds
    proof = next(p for p in bundle["proofs"] if p["decisionId"] == bundle["story"]["charge"]["decisionId"])
    amount = orjson.loads(proof["entry"])[-1]["payload"]["amountMinor"]
    proof["entry"] = proof["entry"].replace(f'"amountMinor":{amount}', f'"amountMinor":{amount + 1}')
    (tmp_path / "altered.json").write_bytes(orjson.dumps(bundle))
    altered = wuguan("check-proof", str(tmp_path / "altered.json"), "--public-key", str(tmp_path / "key.pem.pub"),
                     **offline)
    assert altered.returncode == 1 and "INVALID: the decision is not in the signed tree" in altered.stdout
