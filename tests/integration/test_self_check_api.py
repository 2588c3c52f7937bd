"""GET /api/self-check on the finance API over the finance scenario's stored decisions (real
Postgres, the wuguan_finance role): auth, period validation, JSON and CSV, and figures equal to
the pure report over the same decisions."""
from __future__ import annotations

import pytest

from services.finance.self_check import self_check
from services.finance.self_check_policy import load_self_check_policy

from .test_finance_api import api, bearer, get_json  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.integration


def _month_of(decisions: list[dict], kind: str) -> str:
    return next(d["businessTime"][:7] for d in decisions if d["decisionType"] == kind)


async def test_self_check_route_needs_a_token_and_a_valid_period(api):  # noqa: F811
    assert (await api.get("/api/self-check", params={"period": "2026-04"})).status == 401
    for bad in ("2026-13", "2026-4", "26-04", "", "0000-01"):
        response = await api.get("/api/self-check", headers=bearer(), params={"period": bad})
        assert response.status == 400, bad
    response = await api.get("/api/self-check", headers=bearer(), params={"period": "2026-04", "format": "xml"})
    assert response.status == 400


async def test_self_check_route_reports_the_stored_decisions_as_the_pure_report_does(api):  # noqa: F811
    period = _month_of(api.decisions, "guard.RestorationSlaMissed")
    body = await get_json(api, "/api/self-check", period=period)
    assert body["period"] == period and len(body["rows"]) == 8
    expected = self_check([{**d, "recordedAt": None} for d in api.decisions], period, load_self_check_policy())
    # C.REPLACE_NOW is measured from the store's recorded time, which only the route reads.
    assert {r["key"]: (r["status"], r["breaches"]) for r in body["rows"] if r["key"] != "cardReplacement"} == {
        r["key"]: (r["status"], r["breaches"]) for r in expected["rows"] if r["key"] != "cardReplacement"}
    card = [r["measured"]["count"] for r in body["rows"] + expected["rows"] if r["key"] == "cardReplacement"]
    assert card[0] == card[1]
    restoration = next(r for r in body["rows"] if r["key"] == "restoration")
    assert restoration["status"] == "不达标" and restoration["breaches"]
    response = await api.get("/api/self-check", headers=bearer("auditor"), params={"period": period, "format": "csv"})
    assert response.status == 200 and "不达标" in await response.text()
