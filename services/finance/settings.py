"""The finance API's own settings (read here, not in services.common.config, so the shared
settings stay the workers'). Same rules: a wrong value stops the process with a ConfigError
naming the variable."""
from __future__ import annotations

import os
from dataclasses import dataclass

from services.common.config import Settings, env_int
from services.common.errors import ConfigError

MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class ApiSettings:
    database_url: str
    host: str
    port: int
    secret: str
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
            secret=api_secret(env),
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
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError("WUGUAN_API_SECRET", f"must be at least {MIN_SECRET_LENGTH} characters")
    return secret
