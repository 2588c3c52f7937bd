"""`wuguan explain-charge` against a store filled through the guard's real runtime (broker +
Postgres): a finance user sees, from the stored decisions alone, the tariff version behind a
charge, the checkpoints it passed and how and when its dispute was answered
(CP2.TRACEABLE, D.EVIDENCE, D.RESOLVE, D.AUTO_CREDIT, A.PRIVACY)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from services.billing_guard.worker import DEFINITION

from .guard_inputs import CALLED, CALLING, SHANGHAI, bill, cdr, dispute, fen, tariff, uid
from .runtime_harness import RuntimeHarness
from .test_cli import wuguan

pytestmark = pytest.mark.integration


def at(m, d, hh=10) -> datetime:
    return datetime(2026, m, d, hh, tzinfo=SHANGHAI)


async def test_CP2_TRACEABLE_D_RESOLVE_explain_charge_tells_the_whole_story_from_the_store(kafka_bootstrap, database_url):
    account, sw = uid("A"), uid("SW")
    async with RuntimeHarness(kafka_bootstrap, database_url, DEFINITION, timer_clock="business") as guard:
        await guard.feed(tariff("T-STD", 1, at(1, 1, 0), 10, at(1, 1, 0) - timedelta(days=10)))
        await guard.feed(tariff("T-STD", 2, at(3, 1, 0), 15, at(2, 10), approvalRef="APP-9", filingRef="BA-9"))
        await guard.feed(cdr(account, sw, 1, at(3, 5), usage_id="U-MAIN", origin="O-1"),
                         cdr(account, sw, 1, at(3, 5), usage_id="U-COPY", origin="O-1"),
                         cdr(account, sw, 2, at(3, 6), usage_id="U-OTHER"))
        await guard.feed(bill(account, "B-MAR", "2026-03", 60))
        await guard.feed(dispute(account, "K-AUTO", "open", at(4, 5), billId="B-MAR", disputedItems=["U-COPY"],
                                 disputedAmount=fen(30), reason="charged twice"))
        await guard.feed(dispute(account, "K-NO", "open", at(4, 6), billId="B-MAR", disputedItems=["U-OTHER"],
                                 disputedAmount=fen(30)))
        await guard.feed(dispute(account, "K-NO", "resolve", at(4, 9), resolution="rejected", reason="verified",
                                 actor="agent-1"))
        stored = await guard.stream(f"guard-account-{account}")
        catalogue = await guard.stream("guard-tariffs")

    result = wuguan("explain-charge", "U-MAIN", "--json", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    story = json.loads(result.stdout)
    v2 = catalogue[1]
    assert (story["tariff"]["tariffId"], story["tariff"]["version"]) == ("T-STD", 2)
    assert story["tariff"]["acceptance"]["decisionId"] == v2["decisionId"]
    assert (story["tariff"]["acceptance"]["approvalRef"], story["tariff"]["acceptance"]["filingRef"]) == ("APP-9", "BA-9")
    main = next(d for d in stored if d["decisionType"] == "guard.CdrRated" and d["payload"]["usageId"] == "U-MAIN")
    assert story["charge"]["decisionId"] == main["decisionId"] and story["charge"]["amountMinor"] == 30
    assert story["checkpoints"]["sequence"]["sequenceNumber"] == 1
    assert [c["usageId"] for c in story["checkpoints"]["dedup"]["suppressedCopies"]] == ["U-COPY"]
    assert story["billCycle"]["billId"] == "B-MAR" and story["billCycle"]["closed"] is True
    (auto,) = story["disputes"]
    note = next(d for d in stored if d["decisionType"] == "guard.CreditNoteIssued")
    assert (auto["ticketId"], auto["resolution"], auto["automatic"], auto["resolvedAt"]) == (
        "K-AUTO", "upheld", True, at(4, 5).isoformat())
    assert [n["creditNoteId"] for n in auto["creditNotes"]] == [note["payload"]["creditNoteId"]]
    assert CALLING not in result.stdout and CALLED not in result.stdout

    other = wuguan("explain-charge", "U-OTHER", "--account", account, DATABASE_URL=database_url)
    assert other.returncode == 0, other.stderr
    assert "T-STD v2" in other.stdout and "approval APP-9, filing BA-9" in other.stdout
    assert "dispute K-NO" in other.stdout and "resolution rejected" in other.stdout and "credit note" not in other.stdout
    assert CALLING not in other.stdout and "138****5678" in other.stdout

    missing = wuguan("explain-charge", "U-NOPE", DATABASE_URL=database_url)
    assert missing.returncode == 1 and "no guard decision found" in missing.stdout
