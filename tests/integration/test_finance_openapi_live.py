"""The finance API against its own OpenAPI description (issue 17): `wuguan api` runs as a process
on a real Postgres holding the scenario's decisions, and schemathesis calls every route with
generated inputs; no 500s and every response as documented. /openapi.json is what is committed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from xml.etree import ElementTree
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from services.common.db import connect
from services.common.localstack.embedded import free_port
from services.finance import tokens
from services.finance.projector import catch_up
from services.finance.schema import ensure_schema

from .test_finance_scenario import scenario, store

pytestmark = pytest.mark.integration
SECRET = "openapi-secret-0123456789abcdef-0123456789"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 12  # keeps the whole run well under a minute


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
async def live_api(database_url):
    conn = await connect(database_url)
    await ensure_schema(conn)
    await store(conn, scenario())
    await catch_up(conn)
    await conn.close()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WUGUAN_API_SECRET": SECRET, "WUGUAN_API_PORT": str(port),
           "WUGUAN_WEB_HOST": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-m", "services", "api"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "wuguan api did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_live_api_serves_the_committed_description_and_a_docs_page(live_api):
    status, body = _get(live_api + "/openapi.json")
    served = json.loads(body)
    assert status == 200 and served == json.loads((ROOT / "docs/openapi.json").read_text())
    validate(served)
    status, page = _get(live_api + "/docs")
    assert status == 200 and b"/api/disputes" in page and b"/openapi.json" in page


@pytest.mark.parametrize("role", ["auditor", "finance"])  # finance meets the documented 403s
def test_schemathesis_finds_every_response_as_documented(live_api, tmp_path, role):
    token = tokens.mint("schemathesis", role, 600, SECRET, time.time())
    started = time.monotonic()
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", live_api + "/openapi.json",
         "--header", f"Authorization: Bearer {token}", "--checks", "all",
         # A cursor is opaque (base64url of the last row's key): a schema can give its shape but
         # not which strings decode, so a generated one is rightly refused with a documented 400.
         "--exclude-checks", "positive_data_acceptance",
         "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "17", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
         "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    document = json.loads(_get(live_api + "/openapi.json")[1])
    tested = {case.get("name") for case in ElementTree.parse(tmp_path / "junit.xml").iter("testcase")}
    # Every route, none skipped; schemathesis leaves out the route it loaded the description from,
    # which the test above checks.
    assert tested == {f"GET {path}" for path in document["paths"]} - {"GET /openapi.json"}
    assert time.monotonic() - started < 60, "keep the schemathesis run short"
