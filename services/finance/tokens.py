"""Bearer tokens: HMAC-SHA256-signed claims {sub, role, exp}. Pure (the clock is passed in).

Format: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part)). No library: a
signed, expiring claim set is all the API needs, and stdlib hmac keeps the dependency list short.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import orjson

ROLES = ("finance", "auditor")


class TokenError(Exception):
    """The token cannot be trusted; `reason` is a short code safe to return and to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    exp: int  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def sign(claims: Claims, secret: str) -> str:
    if claims.role not in ROLES:
        raise ValueError(f"unknown role {claims.role!r}")
    body = _b64(orjson.dumps({"sub": claims.sub, "role": claims.role, "exp": claims.exp}))
    return f"{body}.{_mac(secret, body)}"


# A token is a bearer secret: one that outlives a working week is one nobody will remember to revoke.
MAX_TTL_S = 7 * 86400


def mint(sub: str, role: str, ttl_s: int, secret: str, now: float) -> str:
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL_S} seconds (7 days), got {ttl_s}")
    return sign(Claims(sub=sub, role=role, exp=int(now) + ttl_s), secret)


def verify(token: str, secret: str, now: float) -> Claims:
    """Raises TokenError("malformed" | "badSignature" | "expired" | "unknownRole")."""
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise TokenError("malformed")
    # Signature first, constant-time: nothing in an unsigned body is looked at.
    if not hmac.compare_digest(_mac(secret, body).encode(), mac.encode()):
        raise TokenError("badSignature")
    try:
        raw = orjson.loads(_unb64(body))
        claims = Claims(sub=str(raw["sub"]), role=str(raw["role"]), exp=int(raw["exp"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed") from None
    if claims.role not in ROLES:
        raise TokenError("unknownRole")
    if now >= claims.exp:
        raise TokenError("expired")
    return claims
