"""Each service names every decision type it appends once, in its domain's decision_types
module (issue 18); the payload schemas cover exactly those names."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from schemas.decision_payloads import cards as cards_payloads
from schemas.decision_payloads import dunning as dunning_payloads
from services.cards.domain import decision_types as cards_types
from services.dunning.domain import decision_types as dunning_types

ROOT = Path(__file__).resolve().parents[2]
DECISION_TYPE = re.compile(r"^(dunning|cards)\.[A-Z][A-Za-z]+$")
# The modules allowed to spell a dunning.*/cards.* decision type as a literal: the names
# themselves, and the payload schemas (schemas imports no service). Checked in dunning, cards
# and finance; the guard, the local stack and bench still spell a few (issue 18, other parts).
ALLOWED = {
    "services/dunning/domain/decision_types.py", "services/cards/domain/decision_types.py",
    "schemas/decision_payloads/dunning.py", "schemas/decision_payloads/cards.py",
}


def test_dunning_names_every_decision_type_it_has_a_schema_for():
    assert dunning_types.ALL == set(dunning_payloads.PAYLOADS)


def test_cards_names_every_decision_type_it_has_a_schema_for():
    assert cards_types.ALL == set(cards_payloads.PAYLOADS)
    assert not cards_types.CARD_STREAM_TYPES & cards_types.OUTLET_STREAM_TYPES


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and DECISION_TYPE.match(n.value)}


def test_no_dunning_or_cards_decision_type_literal_outside_its_module():
    found = {}
    for folder in ("services/dunning", "services/cards", "services/finance"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative not in ALLOWED and _literals(path):
                found[relative] = sorted(_literals(path))
    assert found == {}
