"""Entrypoint: the dunning worker process."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from services.common.config import Settings
from services.common.policy import LoadedPolicy, load_policy
from services.common.runtime.worker import ServiceDefinition

from .decider import DunningDecider
from .domain.policy import DunningPolicySchema, build_policy


def policy_path(settings: Settings) -> Path:
    if settings.policy_dir is not None:
        return settings.policy_dir / "dunning.json"
    return Path(str(resources.files("services.dunning").joinpath("policy/default.json")))


def load(settings: Settings) -> LoadedPolicy:
    return load_policy(policy_path(settings), DunningPolicySchema(), build_policy)


DEFINITION = ServiceDefinition(decider=DunningDecider(), load_policy=load)
