"""The provisioned Grafana dashboard: valid JSON, wired to the provisioned datasource, and
every query names metrics from the catalogue (docs/operations/metrics.md)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .test_deploy_prometheus import catalogue, metric_names

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
COMPOSE = GRAFANA.parent / "compose" / "compose.yaml"


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def series_names(expr: str) -> set[str]:
    """Metric names with histogram suffixes folded back, and label_values() unwrapped."""
    expr = re.sub(r"label_values\((.*),\s*\w+\)", r"\1", expr)
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in metric_names(expr)}


def test_dashboards_parse_and_have_unique_panel_ids():
    assert "wuguan-overview.json" in dashboards()
    for name, dashboard in dashboards().items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and dashboard["uid"], name


def test_every_query_names_only_catalogued_metrics():
    known = catalogue()
    for name, dashboard in dashboards().items():
        exprs = queries(dashboard)
        assert len(exprs) >= 10
        for expr in exprs:
            used = series_names(expr)
            assert used, expr
            assert used <= known, f"{name}: {expr} uses uncatalogued {sorted(used - known)}"


def test_series_names_fold_histograms_and_label_values():
    assert series_names('histogram_quantile(0.99, sum by (le) (rate(wuguan_batch_seconds_bucket[5m])))') == {"wuguan_batch_seconds"}
    assert series_names('label_values(up{job="wuguan"}, service)') == {"up"}


def test_panels_use_the_provisioned_datasource_and_compose_mounts_them():
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for dashboard in dashboards().values():
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]
            assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "wuguan.yml").read_text())["providers"]
    volumes = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in volumes
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


def test_business_alert_panel_counts_the_listed_decision_types():
    from .test_deploy_prometheus import alerting_decision_types

    (dashboard,) = [d for n, d in dashboards().items() if n == "wuguan-overview.json"]
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith("Business alerts")]
    (regex,) = re.findall(r'decision_type=~"([^"]+)"', panel["targets"][0]["expr"])
    assert set(regex.split("|")) == alerting_decision_types()
