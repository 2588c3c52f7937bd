"""A payload schema for every decision type (issue 17): every type the code can build has one,
its JSON Schema is what the marshmallow schema says, and every example decision fits its type."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas.decision import DECISION_TYPE_PATTERN, validate_decision
from schemas.decision_payloads import DECISION_PAYLOADS, validate_decision_payload
from schemas.decision_types import cards as cards_types
from schemas.decision_types import dunning as dunning_types
from schemas.decision_types import guard as guard_types
from schemas.generate import OUT_DIR, decision_type_file, documents
from schemas.registry import DECISION_TOPICS
from schemas.errors import PAYLOAD_INVALID, InvalidEvent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for topic in DECISION_TOPICS.values() for p in (ROOT / "schemas/examples" / topic).glob("*.json"))
TYPE_LITERAL = re.compile(DECISION_TYPE_PATTERN)


def _named_types() -> dict[str, set[str]]:
    """Constant name -> the decision types it names in schemas/decision_types (a name two services
    share, e.g. RESTORATION_REQUESTED, stands for both)."""
    named: dict[str, set[str]] = {}
    for module in (guard_types, dunning_types, cards_types):
        for name, value in vars(module).items():
            if isinstance(value, str) and TYPE_LITERAL.match(value) and value.count(".") == 1:
                named.setdefault(name, set()).add(value)
    return named


def decision_types_in_code() -> set[str]:
    """Every decision type services/ names: by a constant of schemas/decision_types, or a literal
    shaped like a decision type of a published prefix."""
    prefixes = {topic.split(".")[0] for topic in DECISION_TOPICS.values()}
    named = _named_types()
    found = set()
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TYPE_LITERAL.match(node.value):
                if node.value.split(".")[0] in prefixes and node.value.count(".") == 1:
                    found.add(node.value)
            elif isinstance(node, ast.Attribute) and node.attr in named:
                found |= named[node.attr]
            elif isinstance(node, ast.Name) and node.id in named:
                found |= named[node.id]
    return found


def test_every_decision_type_the_code_names_has_a_payload_schema():
    missing = sorted(decision_types_in_code() - set(DECISION_PAYLOADS))
    # guard.Dispute is a prefix the dispute module matches on, not a type it builds.
    assert [t for t in missing if t != "guard.Dispute"] == [], (
        f"add a payload schema to schemas/decision_payloads/ for {missing}, then run python -m schemas.generate")


def test_every_payload_schema_is_of_a_decision_type_the_code_builds():
    # StreamBlocked is named by an f-string of the runtime (poison_hold.py), once per service.
    orphans = sorted(t for t in set(DECISION_PAYLOADS) - decision_types_in_code() if not t.endswith(".StreamBlocked"))
    assert orphans == [], f"no code builds {orphans}: remove their schemas"


def test_every_decision_type_has_its_json_schema_file():
    docs = documents()
    for decision_type in DECISION_PAYLOADS:
        assert decision_type_file(decision_type) in docs
        assert (OUT_DIR / decision_type_file(decision_type)).is_file(), "run python -m schemas.generate"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_decision_fits_its_type_schema(path: Path):
    decision = orjson.loads(path.read_bytes())
    validate_decision(decision, path.parent.name)
    validate_decision_payload(decision)
    schema = orjson.loads((OUT_DIR / decision_type_file(decision["decisionType"])).read_bytes())
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(decision))
    assert errors == []


def test_a_payload_that_is_not_what_the_code_builds_is_refused_by_both_forms():
    decision = orjson.loads((ROOT / "schemas/examples/dunning.decisions.v1/first-letter-scheduled.json").read_bytes())
    wrong = {**decision, "payload": {**decision["payload"], "deliverAt": decision["payload"]["scheduledFor"]}}
    del wrong["payload"]["scheduledFor"]
    with pytest.raises(InvalidEvent) as info:
        validate_decision_payload(wrong)
    assert info.value.code == PAYLOAD_INVALID and {"payload.deliverAt", "payload.scheduledFor"} <= set(info.value.fields)
    schema = orjson.loads((OUT_DIR / decision_type_file("dunning.ReminderScheduled")).read_bytes())
    assert not Draft202012Validator(schema).is_valid(wrong)


def test_a_decision_type_without_a_schema_is_named():
    with pytest.raises(InvalidEvent, match="no payload schema for decision type 'dunning.Unknown'"):
        validate_decision_payload({"decisionType": "dunning.Unknown", "payload": {}})
