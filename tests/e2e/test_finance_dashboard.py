"""The finance dashboard in headless Chromium against a real `wuguan api` process: the page
loads with the token in the URL fragment, draws its bars, and every number it shows equals the
API's. Chromium is required (scripts/ensure-chromium, a prerequisite of `make test`): no skip."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import subprocess
import time
import urllib.request
import zlib
from pathlib import Path

import orjson
import pytest

from services.common.db import connect
from services.common.localstack.processes import stop_processes
from services.finance import tokens
from services.finance.schema import ensure_schema

from ..integration.test_finance_scenario import scenario, store
from .api_process import SECRET, spawn_api

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900", "--virtual-time-budget=5000"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium not found: run scripts/ensure-chromium (make test does)")
    return path


def run_chromium(url: str, profile: Path, *extra: str, capture: bool = False) -> str:
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode(errors="replace") if capture else ""


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, offset = b"", 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def http_json(url: str, token: str | None = None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return orjson.loads(response.read())


@pytest.fixture
async def api_process(database_url, tmp_path):
    conn = await connect(database_url)
    await ensure_schema(conn)
    decisions = scenario()
    await store(conn, decisions)
    await conn.close()
    process, base, log = spawn_api(database_url, tmp_path / "api.log")
    try:
        deadline = time.monotonic() + 30
        while True:  # healthy, and the background projector has caught up with the log
            assert process.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
            try:
                if (await asyncio.to_thread(http_json, f"{base}/healthz"))["projectedPosition"] == len(decisions):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        yield base
    finally:
        stop_processes([process])
        log.close()


def yuan(fen: int) -> str:
    """The dashboard's money format (and `wuguan run`'s): ¥1,234.56."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def expected_metrics(data: dict) -> dict[str, str]:
    out = {"asOf": data["asOf"]}
    money = data["money"]
    out.update({f"money.{k}": yuan(money[k]) for k in ("arrearsMinor", "disputedMinor", "creditedMinor", "lateFeesMinor")})
    out.update({f"outstanding.{b['bucket']}": yuan(b["amountMinor"]) for b in data["arrearsAging"]})
    for day in data["trends"]:
        out.update({f"trend.{day['day']}.{k}": str(v) for k, v in day.items() if k != "day"})
    out.update({f"scheduled.{c['channel']}": str(c["scheduled"]) for c in data["funnel"]["byChannel"]})
    out.update({f"disputeAging.{b['bucket']}": str(b["count"]) for b in data["disputeAging"]})
    out.update({f"arrearsAging.{b['bucket']}": str(b["count"]) for b in data["arrearsAging"]})
    funnel = data["funnel"]
    out.update({f"funnel.{k}": str(funnel[k]) for k in
                ("occurrences", "reminded", "delivered", "suspensionRequested", "suspended", "restored")})
    out.update({f"channel.{c['channel']}": str(c["reminders"]) for c in funnel["byChannel"]})
    out.update({f"sla.{k}": str(v) for k, v in data["slaBreaches"].items()})
    for o in data["cardsByOutlet"]:
        for k in ("replaced", "escalated", "referred"):
            out[f"cards.{o['outletId']}.{k}"] = str(o[k])
    return out


async def test_dashboard_renders_the_apis_numbers_in_headless_chromium(api_process, tmp_path):
    token = tokens.mint("e2e", "finance", 600, SECRET, time.time())
    url = f"{api_process}/#token={token}"
    data = await asyncio.to_thread(http_json, f"{api_process}/api/dashboard", token)
    assert data["slaBreaches"] == {"disputeReplyOverdue": 1, "restorationSlaMissed": 1}

    shot = tmp_path / "dashboard.png"
    await asyncio.to_thread(run_chromium, url, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1280, 900)
    assert len(set(pixels)) > 32  # not a blank page: text, bars, panels
    if os.environ.get("WUGUAN_SAVE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs/finance/dashboard.png")

    dom = await asyncio.to_thread(run_chromium, url, tmp_path / "profile-dom", "--dump-dom", capture=True)
    shown = dict(re.findall(r'data-metric="([^"]+)"[^>]*>([^<]*)<', dom))
    assert shown == expected_metrics(data)
    # Money first, and real money: the scenario has arrears, a dispute on hold and a credit note.
    assert data["money"]["arrearsMinor"] > 0 and data["money"]["disputedMinor"] == 2_500
    assert data["money"]["creditedMinor"] == 1_500
    assert dom.index('data-metric="money.arrearsMinor"') < dom.index('data-metric="disputeAging.')
    bars_drawn = [m for m in shown if not m.startswith(("asOf", "money.", "trend."))]
    assert dom.count("<rect") == len(bars_drawn)  # one bar per number of a chart
    assert len(data["trends"]) == 14 and any(day["decisions"] for day in data["trends"])
    assert token not in dom  # the fragment was taken out of the address bar

    # Without a token the page asks for one and shows no data.
    bare = await asyncio.to_thread(run_chromium, f"{api_process}/", tmp_path / "profile-bare", "--dump-dom",
                                   capture=True)
    assert '<form id="login">' in bare and "<rect" not in bare


async def test_dashboard_drills_down_from_money_to_accounts_to_decisions_and_refreshes_itself(api_process, tmp_path):
    """Issue 16: a figure opens its accounts, an account its decisions, a charge its story; the
    page reloads its numbers by itself. Links with #drill= / #account= / #decision= open the same
    views the clicks do, so headless Chromium can check each against the API."""
    token = tokens.mint("e2e", "auditor", 600, SECRET, time.time())
    arrears = await asyncio.to_thread(http_json, f"{api_process}/api/arrears?status=open&limit=500", token)
    dom = await asyncio.to_thread(run_chromium, f"{api_process}/#token={token}&drill=arrears",
                                  tmp_path / "profile-drill", "--dump-dom", capture=True)
    rows = re.findall(r'data-drill-row="([^"]+)"', dom)
    assert rows and rows == [item["accountId"] for item in arrears["items"]]
    overdue = re.findall(r'data-drill-cell="overdueMinor"[^>]*>([^<]*)<', dom)
    assert overdue == [yuan(item["overdueMinor"]) for item in arrears["items"]]

    account = "A1"  # three rated calls, a bill and a dispute with a credit note
    trail = await asyncio.to_thread(http_json, f"{api_process}/api/audit/accounts/{account}?limit=500", token)
    dom = await asyncio.to_thread(run_chromium, f"{api_process}/#token={token}&account={account}",
                                  tmp_path / "profile-account", "--dump-dom", capture=True)
    ids = re.findall(r'data-decision-id="([^"]+)"', dom)
    assert ids == [d["decision"]["decisionId"] for d in trail["decisions"]]
    charge = next(d["decision"] for d in trail["decisions"] if d["decision"]["decisionType"] == "guard.CdrRated")
    assert "charge story" in dom

    story = await asyncio.to_thread(http_json, f"{api_process}/api/audit/decisions/{charge['decisionId']}", token)
    dom = await asyncio.to_thread(run_chromium, f"{api_process}/#token={token}&decision={charge['decisionId']}",
                                  tmp_path / "profile-story", "--dump-dom", capture=True)
    the_decision = re.findall(r'data-story="the decision">([^<]*)<', dom)
    assert len(the_decision) == 1 and "guard.CdrRated" in the_decision[0]
    assert yuan(charge["payload"]["amountMinor"]) in the_decision[0] and "CP2.TRACEABLE" in the_decision[0]
    assert len(re.findall(r'data-story="led to"', dom)) == len(story["caused"])

    # Refresh: every 2 s here (#refresh=2); Chromium's virtual time runs 5 s, so it loads again.
    dom = await asyncio.to_thread(run_chromium, f"{api_process}/#token={token}&refresh=2",
                                  tmp_path / "profile-refresh", "--dump-dom", capture=True)
    loads = int(re.search(r'data-loads="(\d+)"', dom).group(1))
    assert loads >= 2, loads
