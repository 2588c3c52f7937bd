"""The finance API with EdDSA tokens (issue 17): it checks them with the public key alone, and
refuses an HS256 token keyed with that public key (algorithm confusion), alg none and the old
format, each with a 401 that names the reason."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.common.db import connect, create_pool
from services.finance import tokens
from services.finance.api import build_app
from services.finance.schema import ensure_schema

from ..unit.test_finance_tokens import ed25519_keys

pytestmark = pytest.mark.integration


@pytest.fixture
async def eddsa_api(database_url):
    conn = await connect(database_url)
    await ensure_schema(conn)
    await conn.close()
    keys = ed25519_keys()
    pool = await create_pool(database_url, role="wuguan_finance")
    checker = tokens.TokenKeys("EdDSA", None, keys.verifying_key)  # the API holds no private key
    client = TestClient(TestServer(build_app(pool, checker)))
    await client.start_server()
    client.keys = keys
    yield client
    await client.close()
    await pool.close()


async def status_and_reason(api, token: str) -> tuple[int, str | None]:
    response = await api.get("/api/dashboard", headers={"Authorization": f"Bearer {token}"})
    return response.status, (await response.json()).get("reason")


async def test_an_eddsa_token_works_and_confusion_none_and_the_old_format_get_401(eddsa_api):
    now = time.time()
    assert (await status_and_reason(eddsa_api, tokens.mint("ops", "finance", 60, eddsa_api.keys, now)))[0] == 200
    claims = {"sub": "x", "role": "finance", "exp": int(now) + 60, "iat": int(now), "aud": tokens.AUDIENCE,
              "iss": tokens.ISSUER}
    header, body, _ = jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")
    mac = hmac.new(eddsa_api.keys.verifying_key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert await status_and_reason(eddsa_api, confused) == (401, "badAlgorithm")
    assert await status_and_reason(eddsa_api, jwt.encode(claims, None, algorithm="none")) == (401, "badAlgorithm")
    old_body = base64.urlsafe_b64encode(b'{"sub":"x","role":"finance","exp":9999999999}').rstrip(b"=").decode()
    assert await status_and_reason(eddsa_api, f"{old_body}.AAAA") == (401, "legacyFormat")
    other = tokens.mint("ops", "finance", 60, ed25519_keys(), now)
    assert await status_and_reason(eddsa_api, other) == (401, "badSignature")
