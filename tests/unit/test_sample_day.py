"""The sample day (`wuguan run`, `wuguan sample`) shows the guard working: every call of a
priced plan is rated (CP2.EFFECTIVE_DATING), the tariff increase with approval is accepted and
the one without is refused (CP2.INCREASE_NEEDS_APPROVAL), the cutover's calls are flagged
(CP5.WINDOW_CDRS) and credited when disputed (D.AUTO_CREDIT), CP1 and D.HOLD show, and the bad
events are refused. Pure: the messages are decoded as the workers do and fed to the guard's
decider in memory."""
from __future__ import annotations

from collections import Counter
from datetime import date

from schemas.errors import InvalidEvent
from schemas.validation import decode_message
from services.billing_guard.decider import INPUT_TOPICS
from services.common.localstack.sample_day import sample_day

from harness.guard import Guard

DAY = date(2026, 12, 6)


def _through_guard(accounts: int = 60):
    guard, invalid = Guard(), []
    for wave in sample_day(DAY, accounts):
        for topic, key, value in wave:
            try:
                event = decode_message(topic, key, value)
            except InvalidEvent as exc:
                invalid.append((topic, exc.code))
                continue
            if topic in INPUT_TOPICS:
                guard.feed(event)
    return guard, invalid


def test_every_sample_call_is_rated_and_each_checkpoint_shows():
    guard, invalid = _through_guard()
    kinds = Counter((d["decisionType"], d["outcome"]) for d in guard.log)
    assert kinds[("guard.CdrUnrated", "heldForReview")] == 0
    assert kinds[("guard.CdrRated", "charged")] == 60 * 3  # three calls per account, all priced
    assert kinds[("guard.CdrRated", "flaggedForVerification")] == 2  # the cutover window's calls
    assert kinds[("guard.TariffVersionAccepted", "accepted")] == 2
    rejected = [d for d in guard.log if d["decisionType"] == "guard.TariffVersionRejected"]
    assert [r["reasonCodes"] for r in rejected] == [
        ["INCREASE_WITHOUT_APPROVAL_REF", "INCREASE_WITHOUT_FILING_REF", "BASKET_CHARGED_MORE", "RATE_RAISED"]]
    assert kinds[("guard.PlannedWorkCleared", "cleared")] == 1
    assert kinds[("guard.PlannedWorkBlocked", "blocked")] == 1
    assert kinds[("guard.CustomerDataChanged", "accepted")] == 1
    assert kinds[("guard.CustomerDataChangeRejected", "rejected")] == 1
    assert kinds[("guard.DisputeAutoCredited", "upheld")] == 1
    assert kinds[("guard.CreditNoteIssued", "issued")] == 1
    assert kinds[("guard.DisputeOpened", "acknowledged")] == 2
    assert kinds[("guard.DisputeReplied", "answered")] == 1
    assert [code for _, code in invalid] == ["malformed_json", "envelope_invalid"]
    assert [rejected.code for _, rejected in guard.dead] == ["CP3.SANITY"]


def test_the_sample_day_is_the_same_every_time():
    assert sample_day(DAY, 20) == sample_day(DAY, 20)
