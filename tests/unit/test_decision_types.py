"""Every decision type is named once, in schemas/decision_types (issue 18): the published
contract's names, which the services, finance, the local stack and the bench import; the
payload schemas cover exactly those names."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from schemas.decision_payloads import cards as cards_payloads
from schemas.decision_payloads import dunning as dunning_payloads
from schemas.decision_payloads import guard as guard_payloads
from schemas.decision_types import cards as cards_types
from schemas.decision_types import dunning as dunning_types
from schemas.decision_types import guard as guard_types

ROOT = Path(__file__).resolve().parents[2]
DECISION_TYPE = re.compile(r"^(guard|dunning|cards)\.[A-Z][A-Za-z]+$")
# Where a decision type may be spelled out: its name, and the payload schemas keyed by it.
ALLOWED = ("schemas/decision_types/", "schemas/decision_payloads/")
CHECKED = ("services", "schemas", "harness", "bench", "interfaces")


@pytest.mark.parametrize("types, payloads", [(guard_types, guard_payloads), (dunning_types, dunning_payloads),
                                             (cards_types, cards_payloads)], ids=["guard", "dunning", "cards"])
def test_every_decision_type_with_a_schema_is_named(types, payloads):
    assert types.ALL == set(payloads.PAYLOADS)


def test_cards_streams_take_distinct_decision_types():
    assert not cards_types.CARD_STREAM_TYPES & cards_types.OUTLET_STREAM_TYPES


def _literals(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and DECISION_TYPE.match(n.value)}


def test_no_decision_type_literal_outside_its_module():
    found = {}
    for folder in CHECKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(ALLOWED) and _literals(path.read_text()):
                found[relative] = sorted(_literals(path.read_text()))
    assert found == {}


def test_the_literal_check_sees_one():
    assert _literals('KIND = "guard.CdrRated"\nOTHER = "guard.decisions.v1"') == {"guard.CdrRated"}
