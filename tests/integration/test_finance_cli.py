"""`wuguan api-token`, `wuguan projections rebuild|checksum` and `wuguan api`'s refusal to start
without a secret."""
from __future__ import annotations

import time

import pytest

from services.composition import main
from services.common.db import connect
from services.finance import tokens
from services.finance.projector import catch_up, checksum
from services.finance.schema import ensure_schema

from .test_finance_scenario import scenario, store

pytestmark = pytest.mark.integration
SECRET = "cli-secret-0123456789abcdef-0123456789"


@pytest.fixture
async def projected(database_url):
    conn = await connect(database_url)
    await ensure_schema(conn)
    await store(conn, scenario())
    await catch_up(conn, page_size=9)
    digest = await checksum(conn)
    await conn.close()
    return database_url, digest


def test_projections_checksum_and_rebuild_print_the_incremental_digest(projected, monkeypatch, capsys):
    url, incremental = projected
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["projections", "checksum"]) == 0
    assert capsys.readouterr().out.strip() == incremental
    assert main(["projections", "rebuild"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"rebuilt: {len(scenario())} events replayed") and out[-1] == incremental


def test_api_token_mints_a_token_the_api_accepts_and_needs_the_secret(monkeypatch, capsys):
    monkeypatch.delenv("WUGUAN_API_SECRET", raising=False)
    assert main(["api-token", "--role", "finance"]) == 2
    assert "WUGUAN_API_SECRET" in capsys.readouterr().err
    assert main(["api"]) == 2  # refuses to start without a secret
    assert "WUGUAN_API_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("WUGUAN_API_SECRET", SECRET)
    assert main(["api-token", "--role", "auditor", "--ttl", "60"]) == 0
    claims = tokens.verify(capsys.readouterr().out.strip(), SECRET, time.time())
    assert claims.role == "auditor" and claims.exp <= time.time() + 60
