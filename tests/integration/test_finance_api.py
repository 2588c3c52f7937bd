"""The finance HTTP API on real Postgres with projected real decisions: lists, filters, cursor
pagination, CSV, trails, auth on every endpoint, SQL-looking input, phone masking, health and
metrics."""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.common.db import connect, create_pool
from services.finance import tokens
from services.finance.api import build_app
from services.finance.projector import catch_up
from services.finance.schema import ensure_schema

from .test_finance_scenario import PHONE, scenario, store

pytestmark = pytest.mark.integration

SECRET = "test-secret-0123456789abcdef-0123456789"
LISTS = ("disputes", "credit-notes", "arrears", "late-fees", "suspensions", "restorations", "card-replacements")
AGGREGATES = ("disputes/aging", "arrears/aging", "reminders/by-channel", "card-replacements/by-outlet")


def token(role: str, ttl: int = 600, secret: str = SECRET) -> str:
    return tokens.mint("test", role, ttl, secret, time.time())


def expired_token(role: str) -> str:
    # Past the clock skew the API tolerates (tokens.DEFAULT_LEEWAY_S).
    return tokens.sign(tokens.Claims("test", role, int(time.time()) - 3600), SECRET)


def legacy_token(role: str) -> str:
    """Wuguan's format before JWT: base64url(claims) "." base64url(HMAC-SHA256(secret, first part))."""
    body = jwt.utils.base64url_encode(orjson.dumps({"sub": "x", "role": role, "exp": int(time.time()) + 600})).decode()
    mac = jwt.utils.base64url_encode(hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()).decode()
    return f"{body}.{mac}"


def bearer(role: str = "finance") -> dict:
    return {"Authorization": f"Bearer {token(role)}"}


@pytest.fixture(scope="module")
async def api(postgres_admin_url):
    """One database for the module: the scenario stored and projected once, read by every test."""
    name = f"wuguan_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(postgres_admin_url)._replace(path=f"/{name}"))
    conn = await connect(url)
    await ensure_schema(conn)
    decisions = scenario()
    await store(conn, decisions)
    await catch_up(conn)
    await conn.close()
    pool = await create_pool(url, role="wuguan_finance")
    client = TestClient(TestServer(build_app(pool, SECRET)))
    await client.start_server()
    client.decisions = decisions
    client.pool = pool
    yield client
    await client.close()
    await pool.close()


async def get_json(api, path, role="finance", **params):
    response = await api.get(path, headers=bearer(role), params=params)
    assert response.status == 200, (path, response.status, await response.text())
    return await response.json()


async def test_disputes_list_filters_and_fields(api):
    body = await get_json(api, "/api/disputes")
    by_ticket = {d["ticketId"]: d for d in body["items"]}
    assert set(by_ticket) == {"T1", "T2", "T3"} and body["nextCursor"] is None
    t2 = by_ticket["T2"]
    assert t2["status"] == "acknowledged" and t2["heldMinor"] == 2_500 and t2["replyOverdue"] is True
    assert t2["openedAt"].endswith("+08:00") and t2["ageDays"] >= 15
    assert [d["ticketId"] for d in (await get_json(api, "/api/disputes", status="closed"))["items"]] == ["T1"]
    assert [d["ticketId"] for d in (await get_json(api, "/api/disputes", account="A3"))["items"]] == ["T3"]
    opened = by_ticket["T2"]["openedAt"]
    ranged = await get_json(api, "/api/disputes", **{"from": opened, "to": opened[:10]})
    assert [d["ticketId"] for d in ranged["items"]] == ["T2"]
    for name in LISTS:
        assert (await get_json(api, f"/api/{name}"))["items"], name


async def test_cursor_pagination_walks_every_row_once_in_a_stable_order(api):
    for name in ("disputes", "arrears", "card-replacements"):
        everything = (await get_json(api, f"/api/{name}"))["items"]
        seen, cursor = [], None
        while True:
            params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
            body = await get_json(api, f"/api/{name}", **params)
            seen.extend(body["items"])
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert seen == everything and len(everything) >= 3, name


async def test_every_list_exports_csv_with_fen_and_yuan(api):
    for name in LISTS + AGGREGATES:
        response = await api.get(f"/api/{name}", headers=bearer(), params={"format": "csv"})
        assert response.status == 200 and response.content_type == "text/csv", name
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert rows, name
    response = await api.get("/api/credit-notes", headers={**bearer(), "Accept": "text/csv"})
    [note] = list(csv.DictReader(io.StringIO(await response.text())))
    assert (note["amountMinor"], note["amountYuan"]) == ("1500", "15.00")
    rows = list(csv.DictReader(io.StringIO(await (await api.get(
        "/api/disputes", headers=bearer(), params={"format": "csv", "status": "acknowledged"})).text())))
    assert [(r["ticketId"], r["heldMinor"], r["heldYuan"]) for r in rows] == [("T2", "2500", "25.00")]


async def test_dispute_trail_lists_the_tickets_decisions_in_order(api):
    body = await get_json(api, "/api/disputes/T1/trail", role="auditor")
    kinds = [d["decision"]["decisionType"] for d in body["decisions"]]
    assert kinds == ["guard.DisputeOpened", "guard.DisputeTransferProposed", "guard.DisputeTransferAccepted",
                     "guard.DisputeReplied", "guard.DisputeResolved", "guard.CreditNoteIssued", "guard.DisputeClosed"]
    positions = [d["globalPosition"] for d in body["decisions"]]
    assert positions == sorted(positions)


async def test_account_audit_trail_spans_services_and_pages(api):
    body = await get_json(api, "/api/audit/accounts/D1", role="auditor")
    services = {d["decision"]["service"] for d in body["decisions"]}
    assert services == {"dunning", "billing_guard"}
    kinds = {d["decision"]["decisionType"] for d in body["decisions"]}
    assert {"dunning.SuspensionRequested", "guard.SuspensionApproved", "guard.RestorationSlaMissed"} <= kinds
    paged, cursor = [], None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = await get_json(api, "/api/audit/accounts/D1", role="auditor", **params)
        paged.extend(page["decisions"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert body["nextCursor"] is None and paged == body["decisions"]


async def test_trail_csv_lists_what_the_json_trail_holds(api):
    """The CSV trails read a few envelope fields straight from the log; they must agree with the
    JSON trail (every decision, in order, same identity, time and outcome)."""
    for path, key in (("/api/audit/accounts/D1", "decisions"), ("/api/disputes/T1/trail", "decisions")):
        body = await get_json(api, path, role="auditor")
        response = await api.get(path, headers=bearer("auditor"), params={"format": "csv"})
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        expected = [(str(d["globalPosition"]), d["decision"]["decisionId"], d["decision"]["decisionType"],
                     d["decision"]["service"], d["streamId"], d["businessTime"], d["decision"]["outcome"],
                     ";".join(d["decision"]["ruleIds"]), ";".join(d["decision"]["causedBy"])) for d in body[key]]
        assert [(r["globalPosition"], r["decisionId"], r["decisionType"], r["service"], r["streamId"],
                 r["businessTime"], r["outcome"], r["ruleIds"], r["causedBy"]) for r in rows] == expected, path
        assert len(expected) >= 3


async def test_decision_trail_shows_causes_and_effects_across_services_and_timers(api):
    by_type = {}
    for d in api.decisions:
        by_type.setdefault(d["decisionType"], d)
    request = by_type["dunning.SuspensionRequested"]
    body = await get_json(api, f"/api/audit/decisions/{request['decisionId']}", role="auditor")
    assert body["decision"]["decision"]["decisionId"] == request["decisionId"]
    assert "guard.SuspensionApproved" in [d["decision"]["decisionType"] for d in body["caused"]]
    assert [d["decision"]["decisionType"] for d in body["causedBy"]] == ["dunning.OccurrenceOpened"]  # its escalation timer
    missed = by_type["guard.RestorationSlaMissed"]
    body = await get_json(api, f"/api/audit/decisions/{missed['decisionId']}", role="auditor")
    assert [d["decision"]["decisionType"] for d in body["causedBy"]] == ["guard.RestorationOrdered"]
    opened = by_type["guard.DisputeOpened"]
    body = await get_json(api, f"/api/audit/decisions/{opened['decisionId']}", role="auditor")
    assert body["externalInputs"] == opened["causedBy"]  # an upstream ticket event, not a decision


async def test_phone_numbers_never_leave_the_api_unmasked(api):
    masked = PHONE[:3] + "****" + PHONE[-4:]
    for path in ("/api/audit/accounts/A1", "/api/disputes/T1/trail"):
        for params in ({}, {"format": "csv"}):
            response = await api.get(path, headers=bearer("auditor"), params=params)
            text = await response.text()
            assert response.status == 200 and PHONE not in text, (path, params)
    text = await (await api.get("/api/audit/accounts/A1", headers=bearer("auditor"))).text()
    assert masked in text  # the CDR numbers and the number in the dispute's reason, masked


ENDPOINTS = [(f"/api/{n}", "finance") for n in LISTS + AGGREGATES] + [
    ("/api/dashboard", "finance"),
    ("/api/disputes/T1/trail", "auditor"),
    ("/api/audit/accounts/A1", "auditor"),
    ("/api/audit/decisions/00000000-0000-4000-8000-000000000000", "auditor"),
]


async def test_every_endpoint_refuses_missing_expired_tampered_and_wrong_role_tokens(api):
    good = token("finance")
    header, body, mac = good.split(".")
    forged_body = jwt.utils.base64url_encode(orjson.dumps({**jwt.decode(good, options={"verify_signature": False}),
                                                          "role": "auditor"})).decode()
    claims = {"sub": "x", "exp": int(time.time()) + 600, "iat": int(time.time()), "aud": tokens.AUDIENCE,
              "iss": tokens.ISSUER}
    cases = {
        "missing": ({}, 401),
        "notBearer": ({"Authorization": f"Basic {good}"}, 401),
        "expired": ({"Authorization": f"Bearer {expired_token('auditor')}"}, 401),
        "tampered": ({"Authorization": f"Bearer {header}.{forged_body}.{mac}"}, 401),
        "otherSecret": ({"Authorization": f"Bearer {token('auditor', secret='another-secret-0123456789')}"}, 401),
        "unknownRole": ({"Authorization": "Bearer " + jwt.encode({**claims, "role": "admin"}, SECRET)}, 401),
        "algNone": ({"Authorization": "Bearer " + jwt.encode({**claims, "role": "auditor"}, None, algorithm="none")},
                    401),
        "legacyFormat": ({"Authorization": f"Bearer {legacy_token('auditor')}"}, 401),
    }
    for path, needed in ENDPOINTS:
        for case, (headers, status) in cases.items():
            response = await api.get(path, headers=headers)
            assert response.status == status, (path, case, response.status)
        if needed == "auditor":
            assert (await api.get(path, headers=bearer("finance"))).status == 403, path
        response = await api.get(path, headers=bearer("auditor"))
        assert response.status in (200, 404), (path, response.status)  # auditors may call everything


async def test_sql_looking_input_is_only_a_value(api):
    evil = ["' OR '1'='1", "A1'; DROP TABLE finance.disputes; --", "1) UNION SELECT * FROM events --"]
    for value in evil:
        assert (await get_json(api, "/api/disputes", account=value))["items"] == []
        assert (await get_json(api, "/api/disputes", status=value))["items"] == []
        response = await api.get(f"/api/disputes/{value}/trail", headers=bearer("auditor"))
        assert response.status == 404
        assert (await get_json(api, f"/api/audit/accounts/{value}", role="auditor"))["decisions"] == []
        for params in ({"from": value}, {"cursor": value}, {"limit": value}, {value: "1"}):
            response = await api.get("/api/disputes", headers=bearer(), params=params)
            assert response.status == 400, params
        assert (await api.get(f"/api/audit/decisions/{value}", headers=bearer("auditor"))).status in (400, 404)
    assert len((await get_json(api, "/api/disputes"))["items"]) == 3  # nothing dropped


async def test_health_metrics_and_aging_agree_with_the_sql_view(api):
    health = await api.get("/healthz")
    assert health.status == 200 and (await health.json())["projectedPosition"] == len(api.decisions)
    await get_json(api, "/api/disputes")
    text = await (await api.get("/metrics")).text()
    assert 'wuguan_api_request_seconds_count{method="GET",route="/api/disputes",status="200"}' in text
    assert "T1" not in text and "A1" not in text  # no account or ticket in metric labels
    aging = (await get_json(api, "/api/arrears/aging"))["items"]
    async with api.pool.acquire() as conn:
        view = [(r["bucket"], r["occurrences"], r["overdue_minor"])
                for r in await conn.fetch("SELECT * FROM finance.v_arrears_aging")]
    assert [(b["bucket"], b["count"], b["amountMinor"]) for b in aging] == view
    assert sum(b["count"] for b in aging) == 2  # D1 and D3 still open


@pytest.mark.parametrize("path,role", [("/api/disputes", "finance"), ("/api/disputes", None), ("/", None),
                                       ("/static/dashboard.js", None), ("/no-such-route", None)])
async def test_every_response_carries_security_headers_and_hides_the_server_software(api, path, role):
    """Issue 19: no sniffing, framing or caching of finance data, and no aiohttp/Python
    versions in `Server` — on success, on 401 and on 404 alike."""
    response = await api.get(path, headers=bearer(role) if role else {})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Server"] == "wuguan"
    assert "aiohttp" not in str(response.headers) and "Python" not in str(response.headers)


def test_a_token_lives_at_most_seven_days():
    tokens.mint("ops", "finance", tokens.MAX_TTL_S, SECRET, time.time())
    for ttl in (0, -5, tokens.MAX_TTL_S + 1, 10**9):
        with pytest.raises(ValueError, match="ttl must be between"):
            tokens.mint("ops", "finance", ttl, SECRET, time.time())
