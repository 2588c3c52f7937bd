"""The committed interface documents are what the code generates (issue 17): docs/openapi.json,
docs/asyncapi.yaml and docs/rules.md; each fails its check when the code changes without it."""
from __future__ import annotations

import orjson
from openapi_spec_validator import validate as validate_openapi

from interfaces import generate, openapi_doc
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
    assert openapi_doc.PATH in generate.stale()
    assert b"/api/write-offs" in openapi_doc.render()
