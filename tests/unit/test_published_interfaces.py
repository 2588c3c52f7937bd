"""The committed interface documents are what the code generates (issue 17): docs/openapi.json,
docs/asyncapi.yaml and docs/rules.md; each fails its check when the code changes without it."""
from __future__ import annotations

import re
import shutil

import orjson
import yaml
from jsonschema import Draft7Validator
from openapi_spec_validator import validate as validate_openapi

from interfaces import asyncapi_doc, generate, openapi_doc, rules_doc
from schemas.decision_payloads import DECISION_PAYLOADS, StreamBlocked
from schemas.registry import PARTITION_KEY, SUPPORTED_SCHEMA_VERSIONS
from services.common.localstack.topics import all_topics
from services.finance import lists


def test_the_committed_documents_are_up_to_date():
    assert generate.stale() == [], "run: python -m interfaces.generate (or make interfaces)"


def test_openapi_json_is_valid_openapi_3_1():
    document = orjson.loads((generate.ROOT / openapi_doc.PATH).read_bytes())
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)


def test_openapi_json_goes_stale_when_a_route_is_added(monkeypatch):
    monkeypatch.setitem(lists.LISTS, "write-offs", lists.ListSpec(
        "finance.v_write_offs", (lists.Column("accountId", "account_id"),), "at", "account_id"))
    assert generate.is_stale(openapi_doc.PATH)
    assert b"/api/write-offs" in openapi_doc.render()


# --- AsyncAPI ------------------------------------------------------------------------------------

ASYNCAPI_SCHEMA = generate.ROOT / "tests/asyncapi/asyncapi-3.0.0.schema.json"


def asyncapi_errors(document: dict) -> list[str]:
    validator = Draft7Validator(orjson.loads(ASYNCAPI_SCHEMA.read_bytes()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(document)]


def committed_asyncapi() -> dict:
    return yaml.safe_load((generate.ROOT / asyncapi_doc.PATH).read_text())


def resolve(document: dict, ref: str):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_yaml_is_a_valid_asyncapi_3_document_whose_refs_resolve():
    document = committed_asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert asyncapi_errors(document) == []
    refs = re.findall(r'"\$ref":"(#/[^"]+)"', orjson.dumps(document).decode())
    assert refs and all(resolve(document, ref) is not None for ref in refs)


def test_the_asyncapi_validator_refuses_a_broken_document():
    document = committed_asyncapi()
    first_op = next(iter(document["operations"]))
    document["operations"][first_op]["action"] = "publish"  # AsyncAPI 2 wording
    del document["info"]["version"]
    errors = asyncapi_errors(document)
    assert any("version" in e for e in errors) and any(first_op in e for e in errors)


def test_asyncapi_describes_every_topic_decision_type_and_key():
    document = committed_asyncapi()
    assert set(document["channels"]) == set(all_topics())
    messages = document["components"]["messages"]
    assert set(DECISION_PAYLOADS) <= set(messages)
    for topic, field in PARTITION_KEY.items():
        assert field in messages[topic]["x-partition-key"]
        assert messages[topic]["x-schema-versions"] == sorted(SUPPORTED_SCHEMA_VERSIONS[topic])
    example = messages["dunning.ReminderScheduled"]["examples"][0]["payload"]
    assert example["payload"]["scheduledFor"]


def test_asyncapi_yaml_goes_stale_when_a_decision_type_is_added(monkeypatch):
    monkeypatch.setitem(DECISION_PAYLOADS, "dunning.WriteOffProposed", StreamBlocked)
    assert generate.is_stale(asyncapi_doc.PATH)
    assert "dunning.WriteOffProposed" in asyncapi_doc.document()["channels"]["dunning.decisions.v1"]["messages"]


# --- docs/rules.md -------------------------------------------------------------------------------

def test_rules_md_names_every_spec_rule_with_its_functions_decision_types_and_tests():
    text = (generate.ROOT / rules_doc.PATH).read_text()
    spec = rules_doc.spec_rules(rules_doc.spec_path().read_text())
    assert len(spec) > 50 and all(f"### {rule_id}\n" in text for rule_id in spec)
    huge_fee = text.split("### CP3.HUGE_FEE\n")[1].split("###")[0]
    assert "offline_billing.py:huge_fee" in huge_fee and "`guard.HugeFeeAlert`" in huge_fee
    assert "guard.BillCycleClosed" not in huge_fee  # a bill closes a cycle; it checks no fee
    assert "test_CP3_HUGE_FEE_once_per_cycle_above_five_times_the_average" in huge_fee
    first_letter = text.split("### DN.FIRST_LETTER\n")[1].split("###")[0]
    assert "`dunning.ReminderScheduled`" in first_letter and "reminders.py:channel_for" in first_letter


def test_rules_md_goes_stale_when_the_code_changes(tmp_path):
    shutil.copytree(generate.ROOT / "services", tmp_path / "services",
                    ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.sql", "static"))
    (tmp_path / "tests").symlink_to(generate.ROOT / "tests")
    late_fees = tmp_path / "services/dunning/domain/late_fees.py"
    late_fees.write_text(late_fees.read_text() + '\n\ndef waive(fee):\n    return ("DN.LATE_FEE", 0)\n')
    changed = rules_doc.render(tmp_path)
    assert changed != (generate.ROOT / rules_doc.PATH).read_bytes()
    assert b"services/dunning/domain/late_fees.py:waive" in changed


def test_input_schema_descriptions_never_stop_mid_sentence():
    """L2: a docstring's whole first paragraph, not its first line (billing.approval.v1 was cut
    after "for an important")."""
    from schemas.generate import documents
    for name, doc in documents().items():
        summary = doc.get("description", "").split(" Input event envelope")[0]
        if " Input event envelope" in doc.get("description", ""):
            assert summary.rstrip().endswith((".", ")")), (name, summary)
    approval = documents()["billing.approval.v1.schema.json"]["description"]
    assert "important customer (CP4.IMPORTANT" in approval
