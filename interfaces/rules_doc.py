"""docs/rules.md: every SPEC rule id with the functions that decide it, the decision types that
cite it, and its tests, read from the code.

- Rule ids and their text: SPEC.md (docs/SPEC.md, the rule book committed with the code, or WUGUAN_SPEC);
  ids the code cites that SPEC does not define (CONTRACT.*) are listed after them.
- Deciding functions: the functions of services/ whose code (not docstring) names the rule id,
  directly or through a module constant; "explained in": the modules and functions whose
  docstring names it (where the platform rules, A.*, are implemented).
- Citing decision types: each call in services/ that names a decision type (a key of
  schemas.decision_payloads) pairs it with the rule ids named in the same call; where a call's
  rule ids are a variable, with those the function names, and those of the function the
  variable was assigned from.
- Tests: test functions under tests/ whose name, docstring or code names the rule id
  (CP3.HUGE_FEE or CP3_HUGE_FEE).
"""
from __future__ import annotations

import ast
import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from schemas.decision import RULE_ID_PATTERN
from schemas.decision_payloads import DECISION_PAYLOADS

PATH = "docs/rules.md"
ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(RULE_ID_PATTERN)
SPEC_RULE = re.compile(r"^- ([A-Z][A-Z0-9]*\.[A-Z0-9_]+): (.*)$")
SECTION = re.compile(r"^#{2,3} (.*)$")
RULE_IN_TEXT = re.compile(r"\b[A-Z][A-Z0-9]*\.[A-Z0-9_]+\b")


def spec_path() -> Path:
    """The rule book, as committed with the code (docs/SPEC.md, a copy of the team's shared one), so a
    clean clone generates and checks rules.md by itself; WUGUAN_SPEC names another copy."""
    return Path(os.environ.get("WUGUAN_SPEC") or ROOT / "docs" / "SPEC.md")


@dataclass
class Rule:
    rule_id: str
    text: str
    section: str
    functions: set[str] = field(default_factory=set)
    explained: set[str] = field(default_factory=set)
    decision_types: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)


def spec_rules(text: str) -> dict[str, Rule]:
    """Rule id -> its first sentence, in SPEC order; a bullet's continuation lines are joined."""
    rules: dict[str, Rule] = {}
    section, current = "", None
    for line in text.splitlines():
        if SECTION.match(line):
            section, current = SECTION.match(line).group(1), None
        elif SPEC_RULE.match(line):
            rule_id, body = SPEC_RULE.match(line).groups()
            current = rules.setdefault(rule_id, Rule(rule_id, body, section))
        elif current is not None and line.startswith("  ") and line.strip():
            current.text += " " + line.strip()
        else:
            current = None
    for rule in rules.values():
        rule.text = rule.text.split(". ")[0].rstrip(".") + "."
    return rules


class _Module:
    """One source module: its parsed tree and the string values of the names it can see."""

    def __init__(self, path: Path, root: Path):
        self.path = path
        self.name = ".".join(path.relative_to(root).with_suffix("").parts)
        self.tree = ast.parse(path.read_text())
        try:
            self.scope = vars(importlib.import_module(self.name))
        except Exception:  # a module that cannot be imported here still has its literals
            self.scope = {}
        self._values: dict[str, object] = {}

    def strings(self, node: ast.AST) -> set[str]:
        """Every string a node names: literals, and names or attributes bound to strings."""
        out = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                out.add(sub.value)
            elif isinstance(sub, (ast.Name, ast.Attribute)):
                value = self._value(sub)
                if isinstance(value, str):
                    out.add(value)
                elif isinstance(value, (tuple, frozenset, set)) and all(isinstance(v, str) for v in value):
                    out.update(value)
        return out

    def _value(self, node: ast.AST):
        key = ast.dump(node)
        if key not in self._values:
            self._values[key] = self._evaluate(node)
        return self._values[key]

    def _evaluate(self, node: ast.AST):
        try:
            return eval(compile(ast.Expression(node), "<name>", "eval"), dict(self.scope))  # names only
        except Exception:
            return None


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _body(function: ast.AST) -> list[ast.AST]:
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring explains a rule; it does not decide it
    return body


def _rules_in(module: _Module, nodes: list[ast.AST]) -> set[str]:
    return {s for n in nodes for s in module.strings(n) if RULE.match(s)}


def _assigned_from(module: _Module, function: ast.AST, names: set[str]) -> set[str]:
    """Rule ids of the same-module functions whose result `names` were assigned from."""
    out: set[str] = set()
    local = {f.name: f for f in _functions(module.tree)}
    for node in ast.walk(function):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        targets = {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        callee = node.value.func
        if targets & names and isinstance(callee, ast.Name) and callee.id in local:
            out |= _rules_in(module, _body(local[callee.id]))
    return out


def _variable_rules(module: _Module, function: ast.AST, names: set[str]) -> set[str]:
    """Rule ids put into the variables `names`: assigned, added to, appended or extended."""
    return {s for s in _put_into(module, function, names) if RULE.match(s)}


def _put_into(module: _Module, function: ast.AST, names: set[str]) -> set[str]:
    """Strings put into the variables `names` in `function`: assigned, added, appended, extended."""
    out: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target, value in _bindings(targets, node.value):
                if target in names:
                    out |= module.strings(value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id in names):
            out |= {s for a in node.args for s in module.strings(a)}
    return out


def _bindings(targets: list[ast.AST], value: ast.AST):
    """(name, value) pairs of an assignment, unpacking `a, b = x, y` element by element."""
    for target in targets:
        if isinstance(target, ast.Name):
            yield target.id, value
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                yield from _bindings([t], v)


def _names_rules(arg: ast.AST) -> bool:
    """An argument that holds rule ids by its name: `rules`, `rule_ids`, `tuple(rules)`."""
    return any(isinstance(n, ast.Name) and "rule" in n.id.lower() for n in ast.walk(arg))


def _passed(module: _Module, function: ast.AST, name: str, depth: int = 3) -> set[str]:
    """Strings the same module's callers of `function` pass for its parameter `name` (through
    callers that pass on a parameter of their own, `depth` calls up)."""
    params = [a.arg for a in function.args.args]
    if name not in params or depth == 0:
        return set()
    index = params.index(name) - (1 if params and params[0] in ("self", "cls") else 0)
    out: set[str] = set()
    for caller in _functions(module.tree):
        for call in (n for n in ast.walk(caller) if isinstance(n, ast.Call)):
            callee = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
            if callee != function.name:
                continue
            given = [k.value for k in call.keywords if k.arg == name] or call.args[index:index + 1]
            out |= {s for g in given for s in module.strings(g)}
            local = {g.id for g in given if isinstance(g, ast.Name) and module._value(g) is None}
            out |= _put_into(module, caller, local) if local else set()
            for own in local & {a.arg for a in caller.args.args}:
                out |= _passed(module, caller, own, depth - 1)
    return out


def _held(module: _Module, function: ast.AST, names: set[str]) -> set[str]:
    """Strings held by the variables `names`: put into them in the function, or passed in by callers."""
    out = _variable_rules(module, function, names) | _assigned_from(module, function, names)
    for name in names:
        out |= _passed(module, function, name)
    return out


def _unresolved(module: _Module, args: list[ast.AST], wanted) -> set[str]:
    return {n.id for a in args for n in ast.walk(a) if isinstance(n, ast.Name) and wanted(n.id)
            and module._value(n) is None}


def _call_pairs(module: _Module, function: ast.AST) -> list[tuple[str, set[str]]]:
    """(decision type, rule ids) for every call in `function` that names a decision type."""
    function_rules = _rules_in(module, _body(function))
    pairs = []
    for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
        args = [*call.args, *(k.value for k in call.keywords)]
        # A call that only wraps one building a decision (decisions.append(Decision(...))) is not it.
        direct = [a for a in args if not isinstance(a, ast.Call)]
        types = {s for a in direct for s in module.strings(a) if s in DECISION_PAYLOADS} | _formatted_types(direct)
        kinds = {a.id for a in direct if isinstance(a, ast.Name) and module._value(a) is None}
        types |= {s for s in _passed_all(module, function, kinds) if s in DECISION_PAYLOADS}
        rule_args = [a for a in args if _rules_in(module, [a]) or _names_rules(a)]
        rules = _rules_in(module, rule_args)
        variables = _unresolved(module, rule_args, lambda name: "rule" in name.lower())
        parameters = {a.arg for a in function.args.args}
        if not types or (kinds and kinds <= parameters and variables and variables <= parameters):
            continue  # no type here, or a helper both are passed to: its callers pair them
        if variables:  # rule ids held in a variable: those put into it, else all the function names
            rules |= {r for r in _held(module, function, variables) if RULE.match(r)} or function_rules
        pairs += [(t, rules) for t in types]
    return pairs


def _formatted_types(args: list[ast.AST]) -> set[str]:
    """Types named by an f-string ending in ".<Name>" (f"{prefix}.StreamBlocked"): every such type."""
    out: set[str] = set()
    for arg in args:
        if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[-1], ast.Constant):
            suffix = str(arg.values[-1].value)
            if suffix.startswith("."):
                out |= {t for t in DECISION_PAYLOADS if t.endswith(suffix)}
    return out


def _passed_all(module: _Module, function: ast.AST, names: set[str]) -> set[str]:
    return set().union(*(_passed(module, function, n) for n in names)) if names else set()


def collect(rules: dict[str, Rule], root: Path = ROOT) -> dict[str, Rule]:
    """Fill in deciding functions and citing decision types from services/; adds code-only ids."""
    for path in sorted((root / "services").rglob("*.py")):
        module = _Module(path, root)
        where = path.relative_to(root).as_posix()
        _explanations(rules, module.tree, where)
        for function in _functions(module.tree):
            for rule_id in _rules_in(module, _body(function)):
                rules.setdefault(rule_id, Rule(rule_id, "(cited in code; not a SPEC rule)", "Code-only rule ids"))
                rules[rule_id].functions.add(f"{where}:{function.name}")
            for decision_type, cited in _call_pairs(module, function):
                for rule_id in cited:
                    rules.setdefault(rule_id, Rule(rule_id, "(cited in code; not a SPEC rule)", "Code-only rule ids"))
                    rules[rule_id].decision_types.add(decision_type)
    return rules


def _explanations(rules: dict[str, Rule], tree: ast.Module, where: str) -> None:
    """Where a module's or a function's docstring names a rule (platform rules live there)."""
    for node, name in [(tree, where), *((f, f"{where}:{f.name}") for f in _functions(tree))]:
        for rule_id in set(RULE_IN_TEXT.findall(ast.get_docstring(node) or "")) & rules.keys():
            rules[rule_id].explained.add(name)


def collect_tests(rules: dict[str, Rule], root: Path = ROOT) -> None:
    for path in sorted((root / "tests").rglob("test_*.py")):
        where = path.relative_to(root).as_posix()
        text = path.read_text()
        for function in _functions(ast.parse(text)):
            if not function.name.startswith("test"):
                continue
            source = function.name + " " + (ast.get_source_segment(text, function) or "")
            for rule_id, rule in rules.items():
                if rule_id in source or rule_id.replace(".", "_") in source:
                    rule.tests.add(f"{where}::{function.name}")


def _items(values: set[str], empty: str) -> str:
    return ", ".join(f"`{v}`" for v in sorted(values)) if values else empty


def markdown(rules: dict[str, Rule]) -> str:
    lines = ["# Rules in the code", "",
             "Generated by `python -m interfaces.generate` from SPEC.md, services/ and tests/: do not edit.",
             "For each rule id: the functions whose code names it, the modules and functions whose docstring "
             "explains it, the decision types that cite it in `ruleIds`, and the tests that name it. A test "
             "fails when this file is stale.", ""]
    section = None
    for rule in rules.values():
        if rule.section != section:
            section = rule.section
            lines += [f"## {section}", ""]
        lines += [f"### {rule.rule_id}", "", rule.text, "",
                  f"- decided in: {_items(rule.functions, '(no function names it)')}",
                  f"- explained in: {_items(rule.explained, '(no docstring names it)')}",
                  f"- cited by: {_items(rule.decision_types, '(no decision type cites it)')}",
                  f"- tests: {_items(rule.tests, '(no test names it)')}", ""]
    return "\n".join(lines)


def render(root: Path = ROOT) -> bytes:
    """docs/rules.md of the sources under `root` (the repository; tests pass a changed copy)."""
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: docs/rules.md is generated from SPEC.md (set WUGUAN_SPEC)")
    rules = collect(spec_rules(path.read_text()), root)
    collect_tests(rules, root)
    return markdown(rules).encode()
