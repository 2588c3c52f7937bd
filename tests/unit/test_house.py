"""The house's shape (issue 18, docs/architecture.md): one layout for every service, no import
circle between the project's modules, and no production function longer than a screen. The
layer rules themselves are import-linter contracts (pyproject.toml), run by `make test` as
`lint-imports`."""
from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "schemas", "harness", "bench", "interfaces")
MAX_FUNCTION_LINES = 60


def _import_cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each one a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # modules number a few hundred: recursion is shallow enough
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_circle_between_the_projects_modules():
    assert _import_cycles(grimp.build_graph(*PACKAGES)) == []


def test_the_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for name in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(name)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.d", imported="a.b")
    assert _import_cycles(graph) == [["a.b", "a.c"]]
    graph.add_import(importer="a", imported="a.d")
    graph.add_import(importer="a.d", imported="a")  # a package's module importing the package back
    assert sorted(_import_cycles(graph)) == [["a", "a.d"], ["a.b", "a.c"]]


def _long_functions(source: str, path: str) -> list[str]:
    return [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_no_production_function_runs_over_60_lines():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += _long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_length_check_counts_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    assert _long_functions(f"def long():\n{body}\n", "m.py") == ["m.py:1 long (62 lines)"]
    assert _long_functions("def short():\n    return 1\n", "m.py") == []


def test_the_three_services_have_the_same_top_level_files():
    def layout(service: str) -> set[str]:
        return {p.name for p in (ROOT / "services" / service).iterdir() if p.name != "__pycache__"}

    assert layout("billing_guard") == layout("dunning") == layout("cards") == {
        "__init__.py", "domain", "decider.py", "worker.py", "cli.py", "policy"}
