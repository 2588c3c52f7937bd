"""The finance API's own settings (read here, not in services.common.config, so the shared
settings stay the workers'). Same rules: a wrong value stops the process with a ConfigError
naming the variable."""
from __future__ import annotations

import os
from dataclasses import dataclass

from services.common.config import Settings, env_int
from services.common.errors import ConfigError

from .tokens import ALGORITHMS, DEFAULT_LEEWAY_S, TokenKeys

MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash


@dataclass(frozen=True)
class ApiSettings:
    database_url: str
    host: str
    port: int
    secret: str | TokenKeys  # what signs and checks the bearer tokens (token_keys)
    projector_interval_ms: int
    db_pool_size: int
    gauges_interval_ms: int

    @classmethod
    def from_env(cls, env: dict | None = None) -> "ApiSettings":
        env = dict(os.environ if env is None else env)
        common = Settings.from_env(env)
        return cls(
            database_url=common.database_url,
            host=common.web_host,
            port=env_int(env, "WUGUAN_API_PORT", 8110, 0, 65535),
            secret=token_keys(env),
            projector_interval_ms=env_int(env, "WUGUAN_PROJECTOR_INTERVAL_MS", 200, 10, 60_000),
            db_pool_size=common.db_pool_size,
            # The domain gauges (gauges.py) are read again at most this often while the log moves.
            gauges_interval_ms=env_int(env, "WUGUAN_GAUGES_INTERVAL_MS", 10_000, 0, 3_600_000),
        )


def api_secret(env: dict | None = None) -> str:
    """WUGUAN_API_SECRET signs the bearer tokens; no default: the API refuses to start without it
    (`wuguan run` sets a development one)."""
    env = os.environ if env is None else env
    secret = env.get("WUGUAN_API_SECRET") or ""
    if not secret:
        raise ConfigError("WUGUAN_API_SECRET", "is required to sign and check API tokens")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError("WUGUAN_API_SECRET", f"must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 3.2)")
    if "-----BEGIN" in secret or secret.startswith(("ssh-", "ecdsa-")):
        # A public key pasted as the HMAC secret is the algorithm-confusion mistake: anyone holding
        # the public key could then mint tokens.
        raise ConfigError("WUGUAN_API_SECRET", "looks like a key file; HS256 needs a random secret"
                                               " (EdDSA keys go in WUGUAN_API_JWT_*_KEY_FILE)")
    return secret


def token_keys(env: dict | None = None) -> TokenKeys:
    """WUGUAN_API_JWT_ALG (HS256, the default, with WUGUAN_API_SECRET; or EdDSA with the PEM files
    WUGUAN_API_JWT_PUBLIC_KEY_FILE, and WUGUAN_API_JWT_PRIVATE_KEY_FILE where tokens are minted) and
    WUGUAN_API_CLOCK_SKEW_S (seconds of clock skew tolerated on exp and iat)."""
    env = os.environ if env is None else env
    algorithm = env.get("WUGUAN_API_JWT_ALG") or "HS256"
    if algorithm not in ALGORITHMS:
        raise ConfigError("WUGUAN_API_JWT_ALG", f"must be one of {', '.join(ALGORITHMS)}")
    leeway = env_int(dict(env), "WUGUAN_API_CLOCK_SKEW_S", DEFAULT_LEEWAY_S, 0, 300)
    if algorithm == "HS256":
        return TokenKeys.hs256(api_secret(env), leeway)
    public = _pem(env, "WUGUAN_API_JWT_PUBLIC_KEY_FILE", required=True)
    private = _pem(env, "WUGUAN_API_JWT_PRIVATE_KEY_FILE", required=False)
    _check_ed25519_pair(public, private)
    return TokenKeys("EdDSA", private, public, leeway)


def _check_ed25519_pair(public: bytes, private: bytes | None) -> None:
    """Keys that cannot check a token stop the API at start, not every request with a 500; a
    private key where the public one belongs would let the API mint what it only has to check."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    try:
        checking = serialization.load_pem_public_key(public)
    except ValueError:
        raise ConfigError("WUGUAN_API_JWT_PUBLIC_KEY_FILE", "is not a PEM public key") from None
    if not isinstance(checking, Ed25519PublicKey):
        raise ConfigError("WUGUAN_API_JWT_PUBLIC_KEY_FILE", "must be an Ed25519 public key")
    if private is None:
        return
    try:
        signing = serialization.load_pem_private_key(private, password=None)
    except (ValueError, TypeError):
        raise ConfigError("WUGUAN_API_JWT_PRIVATE_KEY_FILE", "is not an unencrypted PEM private key") from None
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if not isinstance(signing, Ed25519PrivateKey) or signing.public_key().public_bytes(*raw) != checking.public_bytes(*raw):
        raise ConfigError("WUGUAN_API_JWT_PRIVATE_KEY_FILE", "is not the private half of WUGUAN_API_JWT_PUBLIC_KEY_FILE")


def _pem(env, name: str, required: bool) -> bytes | None:
    path = env.get(name) or ""
    if not path:
        if required:
            raise ConfigError(name, "is required when WUGUAN_API_JWT_ALG=EdDSA (a PEM file)")
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(name, f"cannot be read ({exc.strerror})") from None
