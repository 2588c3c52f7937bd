"""API bearer tokens as JWTs (issue 17): PyJWT-made tokens with the right key work; the old
format, alg none, algorithm confusion, wrong audience/issuer, expiry and skew are handled."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.composition import main
from services.common.errors import ConfigError
from services.finance import tokens
from services.finance.settings import token_keys

SECRET = "unit-secret-0123456789-0123456789abcdef"
NOW = 1_800_000_000


def claims(**extra) -> dict:
    return {"sub": "ana", "role": "auditor", "exp": NOW + 60, "iat": NOW, "aud": tokens.AUDIENCE,
            "iss": tokens.ISSUER, **extra}


def reason(token: str, key=SECRET, now=NOW, **kwargs) -> str:
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify(token, key, now, **kwargs)
    return exc.value.reason


def ed25519_keys() -> tokens.TokenKeys:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return tokens.TokenKeys("EdDSA", pem, public)


def test_a_minted_token_is_a_standard_hs256_jwt_with_every_claim():
    token = tokens.mint("ana", "auditor", 60, SECRET, NOW)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=tokens.AUDIENCE, issuer=tokens.ISSUER,
                         options={"verify_exp": False, "verify_iat": False})
    assert decoded == claims()
    assert tokens.verify(token, SECRET, NOW + 59) == tokens.Claims("ana", "auditor", NOW + 60)


def test_a_token_made_by_pyjwt_with_the_right_secret_works():
    token = jwt.encode(claims(role="finance"), SECRET, algorithm="HS256")
    assert tokens.verify(token, SECRET, NOW).role == "finance"


def test_expiry_and_issue_time_allow_the_configured_clock_skew():
    token = tokens.mint("ana", "finance", 60, SECRET, NOW)
    assert tokens.verify(token, SECRET, NOW + 60 + tokens.DEFAULT_LEEWAY_S - 1).sub == "ana"
    assert reason(token, now=NOW + 60 + tokens.DEFAULT_LEEWAY_S) == "expired"
    assert reason(token, now=NOW + 60, leeway_s=0) == "expired"
    assert reason(token, key=tokens.TokenKeys.hs256(SECRET, leeway_s=0), now=NOW + 60) == "expired"
    future = jwt.encode(claims(iat=NOW + 120, exp=NOW + 600), SECRET)
    assert reason(future) == "notYetValid"
    assert tokens.verify(future, SECRET, NOW, leeway_s=120).sub == "ana"


def test_alg_none_is_refused():
    assert reason(jwt.encode(claims(), None, algorithm="none")) == "badAlgorithm"


def test_algorithm_confusion_is_refused():
    eddsa = ed25519_keys()
    # HS256 keyed with the public key: what a confused verifier would accept.
    forged = jwt.encode(claims(), "x", algorithm="HS256").split(".")
    signing_input = f"{forged[0]}.{forged[1]}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(eddsa.verifying_key, signing_input, hashlib.sha256).digest())
    assert reason(f"{forged[0]}.{forged[1]}.{mac.rstrip(b'=').decode()}", key=eddsa) == "badAlgorithm"
    # And an EdDSA token where HS256 is configured.
    assert reason(tokens.mint("ana", "auditor", 60, eddsa, NOW)) == "badAlgorithm"


def test_eddsa_tokens_verify_with_the_public_key_alone():
    eddsa = ed25519_keys()
    token = tokens.mint("ana", "finance", 60, eddsa, NOW)
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    checker = tokens.TokenKeys("EdDSA", None, eddsa.verifying_key)
    assert tokens.verify(token, checker, NOW).role == "finance"
    assert reason(tokens.mint("ana", "finance", 60, ed25519_keys(), NOW), key=checker) == "badSignature"
    with pytest.raises(ValueError, match="private key"):
        tokens.mint("ana", "finance", 60, checker, NOW)


def test_the_old_format_is_refused_with_a_clear_reason():
    body = base64.urlsafe_b64encode(orjson.dumps({"sub": "x", "role": "auditor", "exp": NOW + 60})).rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify(f"{body.decode()}.{mac.decode()}", SECRET, NOW)
    assert exc.value.reason == "legacyFormat" and "wuguan api-token" in exc.value.message


@pytest.mark.parametrize("token,why", [
    (jwt.encode(claims(), "another-secret-0123456789"), "badSignature"),
    (jwt.encode(claims(aud="someone-else"), SECRET), "badClaims"),
    (jwt.encode(claims(iss="someone-else"), SECRET), "badClaims"),
    (jwt.encode({k: v for k, v in claims().items() if k != "iat"}, SECRET), "badClaims"),
    (jwt.encode(claims(role="root"), SECRET), "unknownRole"),
    ("", "malformed"), ("abc", "malformed"), ("a.b.c", "malformed"), ("abc.", "malformed"),
])
def test_untrusted_tokens_are_refused_with_their_reason(token, why):
    assert reason(token) == why


def test_a_tampered_token_is_refused():
    header, body, mac = tokens.mint("ana", "finance", 60, SECRET, NOW).split(".")
    forged = base64.urlsafe_b64encode(orjson.dumps(claims(role="auditor"))).rstrip(b"=").decode()
    assert reason(f"{header}.{forged}.{mac}") == "badSignature"


def test_unknown_roles_are_not_minted():
    with pytest.raises(ValueError):
        tokens.mint("ana", "root", 60, SECRET, NOW)


def test_token_settings_name_the_bad_field(tmp_path):
    assert token_keys({"WUGUAN_API_SECRET": SECRET}) == tokens.TokenKeys.hs256(SECRET)
    assert token_keys({"WUGUAN_API_SECRET": SECRET, "WUGUAN_API_CLOCK_SKEW_S": "5"}).leeway_s == 5
    for env, field in [({"WUGUAN_API_SECRET": SECRET, "WUGUAN_API_JWT_ALG": "none"}, "WUGUAN_API_JWT_ALG"),
                       ({"WUGUAN_API_SECRET": SECRET, "WUGUAN_API_CLOCK_SKEW_S": "-1"}, "WUGUAN_API_CLOCK_SKEW_S"),
                       ({"WUGUAN_API_JWT_ALG": "EdDSA"}, "WUGUAN_API_JWT_PUBLIC_KEY_FILE"),
                       ({"WUGUAN_API_JWT_ALG": "EdDSA", "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "no")},
                        "WUGUAN_API_JWT_PUBLIC_KEY_FILE")]:
        with pytest.raises(ConfigError) as exc:
            token_keys(env)
        assert field in str(exc.value)
    eddsa = ed25519_keys()
    (tmp_path / "pub.pem").write_bytes(eddsa.verifying_key)
    (tmp_path / "key.pem").write_bytes(eddsa.signing_key)
    keys = token_keys({"WUGUAN_API_JWT_ALG": "EdDSA", "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "pub.pem"),
                       "WUGUAN_API_JWT_PRIVATE_KEY_FILE": str(tmp_path / "key.pem")})
    assert tokens.verify(tokens.mint("ana", "auditor", 60, keys, NOW), keys, NOW).role == "auditor"


def test_api_token_mints_an_eddsa_jwt_when_configured(tmp_path, monkeypatch, capsys):
    eddsa = ed25519_keys()
    (tmp_path / "pub.pem").write_bytes(eddsa.verifying_key)
    (tmp_path / "key.pem").write_bytes(eddsa.signing_key)
    monkeypatch.setenv("WUGUAN_API_JWT_ALG", "EdDSA")
    monkeypatch.setenv("WUGUAN_API_JWT_PUBLIC_KEY_FILE", str(tmp_path / "pub.pem"))
    monkeypatch.setenv("WUGUAN_API_JWT_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))
    assert main(["api-token", "--role", "auditor", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert tokens.verify(token, tokens.TokenKeys("EdDSA", None, eddsa.verifying_key), time.time()).role == "auditor"


def test_the_seven_day_cap_and_not_before_bind_every_token_not_only_ours():
    """A token made elsewhere with the right secret cannot outlive the cap, or start early."""
    ten_years = jwt.encode(claims(exp=NOW + 10 * 365 * 86400), SECRET, algorithm="HS256")
    assert reason(ten_years) == "badClaims"
    backwards = jwt.encode(claims(exp=NOW + 5, iat=NOW + 10), SECRET, algorithm="HS256")  # both within the skew
    assert reason(backwards) == "badClaims"
    tomorrow = jwt.encode(claims(nbf=NOW + 86400), SECRET, algorithm="HS256")
    assert reason(tomorrow) == "notYetValid"
    assert tokens.verify(jwt.encode(claims(nbf=NOW), SECRET, algorithm="HS256"), SECRET, NOW).sub == "ana"


def test_keys_that_cannot_check_a_token_stop_the_api_at_start(tmp_path):
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    other = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption())
    for name, data in (("private.pem", private_pem), ("public.pem", public_pem), ("other.pem", other),
                       ("junk.pem", b"junk")):
        (tmp_path / name).write_bytes(data)
    eddsa = {"WUGUAN_API_JWT_ALG": "EdDSA"}
    cases = [({**eddsa, "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "private.pem")},
              "WUGUAN_API_JWT_PUBLIC_KEY_FILE"),
             ({**eddsa, "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "junk.pem")}, "WUGUAN_API_JWT_PUBLIC_KEY_FILE"),
             ({**eddsa, "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "public.pem"),
               "WUGUAN_API_JWT_PRIVATE_KEY_FILE": str(tmp_path / "other.pem")}, "WUGUAN_API_JWT_PRIVATE_KEY_FILE"),
             ({"WUGUAN_API_SECRET": public_pem.decode()}, "WUGUAN_API_SECRET"),
             ({"WUGUAN_API_SECRET": "x" * 31}, "WUGUAN_API_SECRET")]
    for env, field in cases:
        with pytest.raises(ConfigError) as exc:
            token_keys(env)
        assert exc.value.field == field, env
    assert token_keys({**eddsa, "WUGUAN_API_JWT_PUBLIC_KEY_FILE": str(tmp_path / "public.pem"),
                       "WUGUAN_API_JWT_PRIVATE_KEY_FILE": str(tmp_path / "private.pem")}).algorithm == "EdDSA"
