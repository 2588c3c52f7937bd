"""Prometheus config and alert rules: promtool accepts them, their unit tests pass, and every
alert is traceable to catalogued metrics and a runbook entry.

promtool is required, never optional: `make test` installs it (scripts/ensure-prometheus).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from schemas.decision_types import cards as cards_types
from schemas.decision_types import dunning as dunning_types
from schemas.decision_types import guard as guard_types

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
METRICS_DOC = ROOT / "docs" / "operations" / "metrics.md"
RUNBOOKS = ROOT / "docs" / "operations" / "runbooks.md"
# Where metrics are defined: the workers' catalogue, and the finance API's own.
METRICS_CODE = (
    ROOT / "services" / "common" / "runtime" / "metrics.py",
    ROOT / "services" / "finance" / "api.py",
    ROOT / "services" / "finance" / "gauges.py",
)

# Names PromQL uses that are not metrics.
PROMQL_WORDS = {
    "sum", "by", "without", "max", "min", "avg", "count", "rate", "increase", "irate", "absent",
    "unless", "or", "and", "offset", "on", "ignoring", "group_left", "group_right", "vector",
    "time", "histogram_quantile", "le", "bool", "topk", "bottomk", "clamp_min", "delta",
    "deriv", "changes", "resets", "label_replace", "scalar", "sort", "sort_desc",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed: run scripts/ensure-prometheus (make test does)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [dict(rule, _file=path.name) for rule in group["rules"] if "alert" in rule]
    return found


def catalogue() -> set[str]:
    """Metric names in the catalogue tables of docs/operations/metrics.md, plus Prometheus' `up`."""
    tables = re.findall(r"<!-- catalogue:begin -->(.*?)<!-- catalogue:end -->", METRICS_DOC.read_text(), re.S)
    assert len(tables) >= 2, "the workers' table and the finance API's"
    return {name for table in tables for name in re.findall(r"^\| `([a-z_:]+)` \|", table, re.M)} | {"up"}


def decision_types_in(expr: str) -> set[str]:
    """decision_type="a" and decision_type=~"a|b" matchers (the regex ones list exact names)."""
    return {t for match in re.findall(r'decision_type=~?"([^"]+)"', expr) for t in match.split("|")}


def alerting_decision_types() -> set[str]:
    text = METRICS_DOC.read_text()
    block = text.split("<!-- alerting-decision-types:begin -->")[1].split("<!-- alerting-decision-types:end -->")[0]
    return set(re.findall(r"^\| `([A-Za-z_.]+)` \|", block, re.M))


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (not functions, labels or keywords)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_groupings)
    without_offsets = re.sub(r"\boffset\s+\w+", "", without_ranges)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", without_offsets))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", n)}


def test_rule_files_and_their_tests_exist():
    assert {p.stem for p in RULE_FILES} == {"availability", "domain", "finance", "integrity", "pipeline"}
    assert {p.name for p in TEST_FILES} == {f"{p.stem}_test.yml" for p in RULE_FILES}


def test_promtool_check_config_accepts_the_compose_config_and_its_rules():
    result = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # check config also checks every rule file it names, so all of them must be named.
    for path in RULE_FILES:
        assert f"Checking {path}" in result.stdout


def test_promtool_check_rules():
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass():
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES), result.stdout


def test_promtool_rule_unit_tests_can_fail(tmp_path):
    """The promtool run above would report a broken rule: a rule that never fires fails it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    broken = (PROM / "rules" / "pipeline.yml").read_text().replace("> 0", "> 1e12")
    (tmp_path / "rules" / "pipeline.yml").write_text(broken)
    shutil.copy(PROM / "tests" / "pipeline_test.yml", tmp_path / "tests")
    result = promtool("test", "rules", str(tmp_path / "tests" / "pipeline_test.yml"))
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_every_alert_has_a_firing_unit_test():
    fired = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert {a["alert"] for a in alerts()} <= fired


def test_every_alert_has_severity_summary_and_a_runbook_entry():
    headings = {
        re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
        for h in re.findall(r"^## (.+)$", RUNBOOKS.read_text(), re.M)
    }
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in alerts():
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        annotations = alert["annotations"]
        assert annotations.get("summary") and annotations.get("description"), alert["alert"]
        url = annotations["runbook_url"]
        assert url == f"docs/operations/runbooks.md#{alert['alert'].lower()}", url
        assert url.split("#")[1] in headings, f"no runbook heading for {alert['alert']}"


def test_every_metric_in_the_rules_is_in_the_catalogue():
    known = catalogue()
    for alert in alerts():
        used = metric_names(alert["expr"])
        assert used, alert["alert"]
        assert used <= known, f"{alert['alert']} uses uncatalogued {sorted(used - known)}"


def test_metric_name_extraction_sees_through_promql():
    expr = 'sum by (service, topic) (increase(wuguan_x_total{service="a b"}[10m]) unless wuguan_y offset 1h) > 3 * vector(0)'
    assert metric_names(expr) == {"wuguan_x_total", "wuguan_y"}


def test_catalogue_lists_every_metric_the_code_exports():
    exported = {name for path in METRICS_CODE
                for name in re.findall(r'^\w+ = \w+\(\s*"(wuguan_\w+)"', path.read_text(), re.M)}
    assert len(exported) >= 14 + 17  # the workers' and the finance API's
    missing = exported - catalogue()
    assert not missing, f"document these in docs/operations/metrics.md: {sorted(missing)}"


def test_decision_types_in_rules_are_the_listed_ones():
    in_rules = set()
    for alert in alerts():
        in_rules |= decision_types_in(alert["expr"])
    assert in_rules == alerting_decision_types()


def test_decision_type_extraction_reads_exact_and_regex_matchers():
    expr = 'x{decision_type="a.One"} or y{service="cards", decision_type=~"b.Two|c.Three"}'
    assert decision_types_in(expr) == {"a.One", "b.Two", "c.Three"}


def test_alerting_decision_types_are_ones_the_services_decide():
    """A renamed or misspelt decision type would leave its alert silent for ever."""
    # Every name there is one the code builds (tests/unit/test_decision_payloads.py).
    published = guard_types.ALL | dunning_types.ALL | cards_types.ALL
    assert alerting_decision_types() - published == set()


def runbook_commands() -> list[list[str]]:
    """`wuguan ...` commands in the runbooks, inline or in code blocks, placeholders filled in."""
    text = RUNBOOKS.read_text()
    found = re.findall(r"`(wuguan [^`]+)`", text)
    found += [m.split("#")[0] for m in re.findall(r"(?:^|-- |exec [\w-]+ )(wuguan [a-z].*)$", text, re.M) if "`" not in m]
    filled = {"<topic>": "billing.bill.v1", "<service>": "dunning", "N": "10"}
    return [[filled.get(word, word) for word in cmd.split()] for cmd in found if cmd != "wuguan ..."]


def test_runbook_commands_are_real_wuguan_commands():
    from services.composition import parser

    commands = runbook_commands()
    assert len(commands) >= 15
    for command in commands:
        try:
            parser().parse_args(command[1:])
        except SystemExit:
            pytest.fail(f"runbooks.md: not a wuguan command: {' '.join(command)}")
    assert {c[1] for c in commands} >= {"dlq", "verify"}
