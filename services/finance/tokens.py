"""Bearer tokens: standard JWTs (RFC 7519) made and checked with PyJWT. Pure (the clock is passed in).

Claims: sub, role, exp, iat, aud ("wuguan-finance-api"), iss ("wuguan"). Signed with HS256 and
WUGUAN_API_SECRET by default; EdDSA (Ed25519) when WUGUAN_API_JWT_ALG=EdDSA, so a gateway can check
tokens with the public key alone. Only the one configured algorithm is accepted: `alg: none`, and
a token signed with another algorithm (e.g. HS256 keyed with the EdDSA public key: algorithm
confusion) are refused. Wuguan's earlier own format (base64 claims "." HMAC) is refused with a
reason that says so.
"""
from __future__ import annotations

import binascii
import base64
import time
from dataclasses import dataclass, field

import jwt
import orjson

ROLES = ("finance", "auditor")
AUDIENCE = "wuguan-finance-api"
ISSUER = "wuguan"
ALGORITHMS = ("HS256", "EdDSA")
DEFAULT_LEEWAY_S = 30  # clock skew allowed between the minting host and the API
REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "aud", "iss"]

# Short codes safe to return and to log, with what they mean for the caller.
MESSAGES = {
    "malformed": "the token is not a JWT",
    "legacyFormat": "the old wuguan token format is no longer accepted: mint a JWT with `wuguan api-token`",
    "badAlgorithm": "the token's algorithm is not the one this API accepts",
    "badSignature": "the token's signature does not verify",
    "badClaims": "the token lacks a required claim, or has the wrong audience or issuer",
    "expired": "the token has expired",
    "notYetValid": "the token was issued in the future",
    "unknownRole": "the token's role is not finance or auditor",
}


class TokenError(Exception):
    """The token cannot be trusted; `reason` is a short code safe to return and to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.message = MESSAGES.get(reason, reason)


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    exp: int  # seconds since the epoch
    iat: int | None = field(default=None, compare=False)  # seconds since the epoch; informative


@dataclass(frozen=True)
class TokenKeys:
    """How tokens are signed and checked: the algorithm, its keys and the clock skew allowed.

    HS256: one shared secret signs and checks. EdDSA: the private key (PEM) signs, the public key
    (PEM) checks; an API that only checks needs no private key."""

    algorithm: str = "HS256"
    signing_key: str | bytes | None = None
    verifying_key: str | bytes | None = None
    leeway_s: int = DEFAULT_LEEWAY_S

    @classmethod
    def hs256(cls, secret: str, leeway_s: int = DEFAULT_LEEWAY_S) -> "TokenKeys":
        return cls("HS256", secret, secret, leeway_s)


def _keys(secret: "str | TokenKeys") -> TokenKeys:
    return secret if isinstance(secret, TokenKeys) else TokenKeys.hs256(secret)


def sign(claims: Claims, secret: "str | TokenKeys", now: float | None = None) -> str:
    """A JWT of `claims`; iat is claims.iat, else `now`, else the wall clock."""
    if claims.role not in ROLES:
        raise ValueError(f"unknown role {claims.role!r}")
    keys = _keys(secret)
    if keys.signing_key is None:
        raise ValueError("no signing key: EdDSA tokens are minted with the private key")
    issued = claims.iat if claims.iat is not None else int(time.time() if now is None else now)
    body = {"sub": claims.sub, "role": claims.role, "exp": claims.exp, "iat": issued, "aud": AUDIENCE, "iss": ISSUER}
    return jwt.encode(body, keys.signing_key, algorithm=keys.algorithm)


# A token is a bearer secret: one that outlives a working week is one nobody will remember to revoke.
MAX_TTL_S = 7 * 86400


def mint(sub: str, role: str, ttl_s: int, secret: "str | TokenKeys", now: float) -> str:
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL_S} seconds (7 days), got {ttl_s}")
    return sign(Claims(sub=sub, role=role, exp=int(now) + ttl_s, iat=int(now)), secret)


def verify(token: str, secret: "str | TokenKeys", now: float, leeway_s: int | None = None) -> Claims:
    """Raises TokenError with one of the reasons in MESSAGES."""
    keys = _keys(secret)
    leeway = keys.leeway_s if leeway_s is None else leeway_s
    if _is_legacy(token):
        raise TokenError("legacyFormat")
    try:
        # The time claims are checked below against `now`, so tests and replays need no wall clock.
        raw = jwt.decode(token, keys.verifying_key, algorithms=[keys.algorithm], audience=AUDIENCE, issuer=ISSUER,
                         options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False,
                                  "verify_nbf": False})
    except jwt.InvalidAlgorithmError:
        raise TokenError("badAlgorithm") from None
    except jwt.InvalidSignatureError:
        raise TokenError("badSignature") from None
    except (jwt.MissingRequiredClaimError, jwt.InvalidAudienceError, jwt.InvalidIssuerError):
        raise TokenError("badClaims") from None
    except jwt.PyJWTError:  # not a JWT at all, or (InvalidKeyError) one the configured key cannot check
        raise TokenError("malformed") from None
    return _checked(raw, now, leeway)


def _checked(raw: dict, now: float, leeway: int) -> Claims:
    if not all(isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in ("exp", "iat")):
        raise TokenError("badClaims")
    claims = Claims(sub=str(raw["sub"]), role=str(raw["role"]), exp=raw["exp"], iat=raw["iat"])
    if claims.role not in ROLES:
        raise TokenError("unknownRole")
    if now >= claims.exp + leeway:
        raise TokenError("expired")
    if claims.iat > now + leeway or _not_before(raw) > now + leeway:
        raise TokenError("notYetValid")
    if not 0 < claims.exp - claims.iat <= MAX_TTL_S:  # the cap binds every token, not only ours
        raise TokenError("badClaims")
    return claims


def _not_before(raw: dict) -> float:
    nbf = raw.get("nbf", 0)
    if isinstance(nbf, bool) or not isinstance(nbf, (int, float)):
        raise TokenError("badClaims")
    return nbf


def _is_legacy(token: str) -> bool:
    """The earlier format: base64url(JSON claims) "." base64url(HMAC), two parts where a JWT has three."""
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac or "." in mac:
        return False
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(claims, dict) and {"sub", "role", "exp"} <= claims.keys()
