"""Entrypoint: the cards worker process."""
from __future__ import annotations

from services.common.config import Settings
from services.common.policy import LoadedPolicy, load_policy
from services.common.policy_files import policy_path
from services.common.runtime.worker import ServiceDefinition

from .decider import CardsDecider
from .domain.policy import CardsPolicySchema, build_policy


def load(settings: Settings) -> LoadedPolicy:
    return load_policy(policy_path(settings, "cards"), CardsPolicySchema(), build_policy)


DEFINITION = ServiceDefinition(decider=CardsDecider(), load_policy=load)
