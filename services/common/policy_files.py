"""Where a service's policy file lives: WUGUAN_POLICY_DIR/<service>.json, else the bundled default."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .config import Settings


def policy_path(settings: Settings, service: str) -> Path:
    if settings.policy_dir is not None:
        return settings.policy_dir / f"{service}.json"
    return Path(str(resources.files(f"services.{service}").joinpath("policy/default.json")))
