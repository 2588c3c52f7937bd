"""Process settings, read once from the environment.

Every variable is documented in the README's configuration table; a wrong value
stops the process with a ConfigError naming the variable. Which services there are, and their
default ports, the composition root says (services/composition.py): the kernel knows none.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError


def gc_young_threshold(env: Mapping[str, str]) -> int:
    """WUGUAN_GC_YOUNG_THRESHOLD (runtime/gc_tuning.py), which one-shot commands read on their own."""
    return env_int(env, "WUGUAN_GC_YOUNG_THRESHOLD", 50_000, 0, 10_000_000)


def env_int(env: dict, name: str, default: int, lo: int, hi: int) -> int:
    """An integer setting within [lo, hi]; ConfigError naming the variable otherwise."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/wuguan"
    partitions: int = 6
    batch_size: int = 500
    batch_max_bytes: int = 16 * 1024 * 1024
    db_role: str = "wuguan_service"
    db_pool_size: int = 4
    fast_group_join: bool = False
    policy_dir: Path | None = None
    relay_interval_ms: int = 100
    timer_interval_ms: int = 500
    timer_clock: str = "business"
    verify_interval_s: int = 3600
    # The embedded broker answers an empty fetch only when the wait ends, even if data arrives
    # meanwhile: every hop waited up to this long (docs/performance.md, run 17). A real Kafka
    # answers as soon as data arrives, so a short wait costs it only idle polls.
    fetch_max_wait_ms: int = 20
    # The wait once a consumer has fetched nothing for a second (runtime/fetch_wait.py): idle
    # polls every 20 ms kept 0.6 of two cores busy (run 18); at 100 ms the embedded broker delays
    # the first input after a quiet second by at most ~50 ms, inside the card complaint goal.
    fetch_idle_wait_ms: int = 100
    gc_young_threshold: int = 50_000  # runtime/gc_tuning.py (gc_young_threshold); 0: CPython's settings
    web_host: str = "127.0.0.1"
    web_ports: dict = field(default_factory=dict)  # service -> its health and metrics port
    log_level: str = "INFO"
    max_event_bytes: int = 1024 * 1024
    dead_letter_max_bytes: int = 1_000_000
    checkpoint_key: Path | None = None  # Ed25519 signing key (issue 14); unset: no signed checkpoints
    checkpoint_every_decisions: int = 10_000
    checkpoint_every_s: int = 60
    checkpoint_topic: str = "audit.checkpoints.v1"
    checkpoint_public_keys: tuple[Path, ...] = ()  # what verify --checkpoints and check-proof trust

    @classmethod
    def from_env(cls, env: dict | None = None, web_ports: Mapping[str, int] | None = None) -> "Settings":
        """`web_ports`: each service's default port (ServiceRegistry.web_ports), which
        WUGUAN_<SERVICE>_PORT overrides; only a worker and `wuguan run` need them."""
        env = dict(os.environ if env is None else env)
        ports = dict(web_ports or {})
        for service in ports:
            ports[service] = env_int(env, f"WUGUAN_{service.upper()}_PORT", ports[service], 0, 65535)
        policy_dir = env.get("WUGUAN_POLICY_DIR") or None
        if policy_dir and not Path(policy_dir).is_dir():
            raise ConfigError("WUGUAN_POLICY_DIR", f"{policy_dir!r} is not a directory")
        level = env.get("WUGUAN_LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("WUGUAN_LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        timer_clock = env.get("WUGUAN_TIMER_CLOCK", cls.timer_clock)
        if timer_clock not in ("business", "wall"):
            raise ConfigError("WUGUAN_TIMER_CLOCK", f"must be business or wall, got {timer_clock!r}")
        return cls(
            timer_clock=timer_clock,
            fetch_max_wait_ms=env_int(env, "WUGUAN_FETCH_MAX_WAIT_MS", cls.fetch_max_wait_ms, 1, 10_000),
            fetch_idle_wait_ms=env_int(env, "WUGUAN_FETCH_IDLE_WAIT_MS", cls.fetch_idle_wait_ms, 1, 10_000),
            gc_young_threshold=gc_young_threshold(env),
            verify_interval_s=env_int(env, "WUGUAN_VERIFY_INTERVAL_S", cls.verify_interval_s, 1, 7 * 86400),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or cls.kafka_bootstrap_servers,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            partitions=env_int(env, "WUGUAN_PARTITIONS", cls.partitions, 1, 1024),
            batch_size=env_int(env, "WUGUAN_BATCH_SIZE", cls.batch_size, 1, 100_000),
            batch_max_bytes=env_int(env, "WUGUAN_BATCH_MAX_BYTES", cls.batch_max_bytes, 64 * 1024, 1024 * 1024 * 1024),
            db_role=env.get("WUGUAN_DB_ROLE", cls.db_role),
            db_pool_size=env_int(env, "WUGUAN_DB_POOL_SIZE", cls.db_pool_size, 2, 100),
            fast_group_join=_bool(env, "WUGUAN_FAST_GROUP_JOIN", cls.fast_group_join),
            policy_dir=Path(policy_dir) if policy_dir else None,
            relay_interval_ms=env_int(env, "WUGUAN_RELAY_INTERVAL_MS", cls.relay_interval_ms, 10, 60_000),
            timer_interval_ms=env_int(env, "WUGUAN_TIMER_INTERVAL_MS", cls.timer_interval_ms, 10, 60_000),
            web_host=env.get("WUGUAN_WEB_HOST", cls.web_host),
            web_ports=ports,
            log_level=level,
            max_event_bytes=env_int(env, "WUGUAN_MAX_EVENT_BYTES", cls.max_event_bytes, 1024, 64 * 1024 * 1024),
            dead_letter_max_bytes=env_int(env, "WUGUAN_DEAD_LETTER_MAX_BYTES", cls.dead_letter_max_bytes,
                                          16 * 1024, 64 * 1024 * 1024),
            checkpoint_key=Path(env["WUGUAN_CHECKPOINT_KEY"]) if env.get("WUGUAN_CHECKPOINT_KEY") else None,
            checkpoint_every_decisions=env_int(env, "WUGUAN_CHECKPOINT_EVERY_DECISIONS",
                                               cls.checkpoint_every_decisions, 1, 10_000_000),
            checkpoint_every_s=env_int(env, "WUGUAN_CHECKPOINT_EVERY_S", cls.checkpoint_every_s, 1, 86_400),
            checkpoint_topic=env.get("WUGUAN_CHECKPOINT_TOPIC") or cls.checkpoint_topic,
            checkpoint_public_keys=tuple(Path(p.strip()) for p in env.get("WUGUAN_CHECKPOINT_PUBLIC_KEYS", "").split(",")
                                         if p.strip()),
        )
