"""Entrypoint: the cards worker process."""
from __future__ import annotations

from services.common.config import Settings
from services.common.policy import LoadedPolicy, load_policy
from services.common.policy_files import policy_path
from services.common.runtime.worker import ServiceDefinition
from services.common.version_only_policy import VersionOnlyPolicySchema

from .decider import CardsDecider


def load(settings: Settings) -> LoadedPolicy:
    return load_policy(policy_path(settings, "cards"), VersionOnlyPolicySchema(), dict)


DEFINITION = ServiceDefinition(decider=CardsDecider(), load_policy=load)
