"""billing_guard's layout (issue 18): its decision types named once, its dispatch in the domain as
tables, no function over 60 lines, a pure domain."""
from __future__ import annotations

from pathlib import Path

from services.billing_guard.decider import INPUT_TOPICS
from schemas.decision_types import guard as decision_types
from services.billing_guard.domain import decide, evolve
from services.billing_guard.domain.account import BILLING_FOLDS
from services.billing_guard.domain.disputes import DISPUTE_TYPES
from services.billing_guard.domain import suspension, vip_approval

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "services/billing_guard"


def test_dispute_prefix_names_exactly_the_dispute_types():
    named = {t for t in decision_types.ALL if t.startswith(decision_types.DISPUTE_PREFIX)}
    assert named == {v for k, v in vars(decision_types).items() if k.startswith("DISPUTE_") and k != "DISPUTE_PREFIX"}


def test_each_account_decision_has_one_fold():
    groups = [set(BILLING_FOLDS), set(DISPUTE_TYPES), set(suspension.TYPES), set(vip_approval.TYPES),
              {decision_types.CUSTOMER_DATA_CHANGED}]
    assert sum(len(g) for g in groups) == len(set().union(*groups)) == len(evolve.ACCOUNT_FOLDS)


def test_every_input_topic_has_a_rule():
    assert set(INPUT_TOPICS) | {decide.TIMER, decide.SUSPENSION_REQUEST} == set(decide.RULES)


def test_every_dispute_decision_changes_its_ticket():
    from services.billing_guard.domain.disputes import _TICKET_CHANGES
    assert set(_TICKET_CHANGES) | {decision_types.DISPUTE_OPENED} == DISPUTE_TYPES
