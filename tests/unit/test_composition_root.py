"""The house (issue 18): the kernel, services/common, imports no service and no finance, not even
inside a function; services/composition.py is the one place that knows them all, and `wuguan`
has every command of every service."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.common.config import Settings
from services.common.service_registry import ServiceDeclaration, ServiceRegistry
from services.composition import REGISTRY, SERVICES, parser

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "services" / "common"
OUTSIDE_THE_KERNEL = ("services.billing_guard", "services.dunning", "services.cards", "services.finance",
                      "services.composition")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Every module a file imports, at any depth of its code, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            # `from services import finance` imports services.finance
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return found


def reaches_outside(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in OUTSIDE_THE_KERNEL)


def test_the_kernel_imports_no_service_and_no_finance():
    files = sorted(KERNEL.rglob("*.py"))
    assert len(files) > 50  # the walk found the kernel
    offending = {f"{path.relative_to(ROOT)}: {module}"
                 for path in files for module in imported_modules(path) if reaches_outside(module)}
    assert not offending, sorted(offending)


def test_the_walk_sees_function_level_and_relative_imports():
    stack = KERNEL / "localstack" / "stack.py"
    assert "services.common.config.Settings" in imported_modules(stack)  # `from ..config import Settings`
    source = "def f():\n    from ...finance.process import spawn_api\n    from services import dunning\n"
    found = {m for m in imported_modules(stack, source) if reaches_outside(m)}
    assert found == {"services.finance.process", "services.finance.process.spawn_api", "services.dunning"}


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


def test_python_m_services_common_cli_runs_the_installed_wuguan():
    """bench and the tests start `python -m services.common.cli`: the kernel finds the composition
    root through the package metadata ([project.scripts] wuguan), not by importing it."""
    from services.common.cli import installed_main
    from services.composition import main

    assert installed_main() is main
