"""Entrypoint: the dunning worker process."""
from __future__ import annotations

from services.common.config import Settings
from services.common.policy import LoadedPolicy, load_policy
from services.common.policy_files import policy_path
from services.common.runtime.worker import ServiceDefinition

from .decider import DunningDecider
from .domain.policy import DunningPolicySchema, build_policy


def load(settings: Settings) -> LoadedPolicy:
    return load_policy(policy_path(settings, "dunning"), DunningPolicySchema(), build_policy)


DEFINITION = ServiceDefinition(decider=DunningDecider(), load_policy=load)
