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


def expected_metrics(data: dict) -> dict[str, str]:
    out = {"asOf": data["asOf"]}
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
    assert dom.count("<rect") == len(shown) - 1  # one bar per number (asOf has none)
    assert token not in dom  # the fragment was taken out of the address bar

    # Without a token the page asks for one and shows no data.
    bare = await asyncio.to_thread(run_chromium, f"{api_process}/", tmp_path / "profile-bare", "--dump-dom",
                                   capture=True)
    assert '<form id="login">' in bare and "<rect" not in bare
