"""The house (issue 18): services/composition.py is the one place that knows every service, and
`wuguan` has every command of every service. That the kernel imports none of them is an
import-linter contract (pyproject.toml, `make test`)."""
from __future__ import annotations


import pytest

from schemas.registry import DECISION_TOPICS
from services.common.config import Settings
from services.common.service_registry import ServiceDeclaration, ServiceRegistry
from services.composition import REGISTRY, SERVICES, parser



def test_every_service_is_registered_once_in_start_order():
    assert SERVICES == ("billing_guard", "dunning", "cards")
    assert REGISTRY.web_ports == {"billing_guard": 8101, "dunning": 8102, "cards": 8103}
    with pytest.raises(ValueError, match="declared twice"):
        ServiceRegistry(services=(REGISTRY.services[0], REGISTRY.services[0]), read_side=REGISTRY.read_side)


def test_wuguan_has_the_kernel_s_commands_and_each_service_s():
    commands = set(parser()._subparsers._group_actions[0].choices)
    assert commands == {
        "run", "worker", "migrate", "verify", "keys", "prove", "check-proof", "topics", "sample", "dlq",
        "explain-charge", "approvals",  # billing_guard
        "work-queue",  # dunning
        "cards",  # cards
        "api", "api-token", "projections", "self-check",  # finance
    }
    assert parser().parse_args(["worker", "cards"]).service == "cards"


def test_settings_read_each_declared_service_s_port_override():
    settings = Settings.from_env({"WUGUAN_DUNNING_PORT": "9000"}, web_ports=REGISTRY.web_ports)
    assert settings.web_ports == {"billing_guard": 8101, "dunning": 9000, "cards": 8103}
    assert Settings.from_env({}).web_ports == {}  # no registry, no services: the kernel knows none


def test_a_service_s_worker_definition_is_its_decider():
    guard: ServiceDeclaration = REGISTRY.service("billing_guard")
    assert guard.definition().decider.service == "billing_guard"


def test_every_registered_service_has_its_decision_topic_in_the_contract():
    assert set(SERVICES) == set(DECISION_TOPICS)
