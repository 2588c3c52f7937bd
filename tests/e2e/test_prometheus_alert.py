"""A real Prometheus (Debian's `prometheus` binary) scrapes a real dunning worker with the
production scrape config and alert rules, and the dead-letter alert fires for one bad event;
it scrapes the real finance API, and the gauge alerts fire while a breach lasts and clear after.

Only intervals and targets are changed from deploy/prometheus/prometheus.yml, so this checks
the production labels (honor_labels, the `service` target label) as well as the rule.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from services.common.localstack.embedded import free_port
from services.common.localstack.publish import publish

pytestmark = pytest.mark.e2e
PROM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def local_config(targets: dict[str, int], finance_port: int | None = None) -> dict:
    """The production config with 1 s intervals, local targets and no Alertmanager."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting")
    config["rule_files"] = [str(PROM_DIR / pattern) for pattern in config["rule_files"]]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs["wuguan"]
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}} for service, port in targets.items()
    ]
    config["scrape_configs"] = [job]
    if finance_port is not None:
        finance = jobs["wuguan-finance"]
        for static in finance["static_configs"]:
            static["targets"] = [f"127.0.0.1:{finance_port}"]
        config["scrape_configs"].append(finance)
    return config


class Prometheus:
    def __init__(self, tmp_path: Path, targets: dict[str, int], finance_port: int | None = None):
        exe = shutil.which("prometheus")
        if exe is None:
            pytest.fail("prometheus is not installed: run scripts/ensure-prometheus (make test does)")
        self.port = free_port()
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(local_config(targets, finance_port)))
        self.log_path = tmp_path / "prometheus.log"
        self.process = subprocess.Popen(
            [
                exe,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def get(self, path: str, **params) -> dict | str:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=3) as response:
            body = response.read().decode()
        return json.loads(body)["data"] if path.startswith("/api/") else body

    async def poll(self, what: str, timeout_s: float, check):
        """Poll `check()` (blocking HTTP, so in a thread) until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last_error = None
        while loop.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited {self.process.returncode}: {self.log()[-3000:]}")
            try:
                result = await asyncio.to_thread(check)
                if result:
                    return result
            except OSError as exc:  # not listening yet
                last_error = exc
            await asyncio.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what} ({last_error}); prometheus log: {self.log()[-2000:]}")

    def dead_letter_alerts(self) -> list[dict]:
        return self.alerts("WuguanDeadLetters")

    def alerts(self, name: str) -> list[dict]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def test_dead_letter_alert_fires_in_a_real_prometheus(workers, tmp_path):
    workers.start("dunning")
    await workers.wait_healthy("dunning")
    prometheus = Prometheus(tmp_path, {"dunning": workers.ports["dunning"]})
    try:
        await prometheus.poll("prometheus ready", 20, lambda: "Ready" in prometheus.get("/-/ready"))
        loaded = {g["name"] for g in prometheus.get("/api/v1/rules")["groups"]}
        assert loaded == {"wuguan-availability", "wuguan-domain", "wuguan-finance", "wuguan-integrity", "wuguan-pipeline"}

        def dunning_up():
            result = prometheus.get("/api/v1/query", query='up{job="wuguan",service="dunning"} == 1')["result"]
            return result and prometheus.get("/api/v1/query", query='wuguan_ready{service="dunning"} == 1')["result"]

        await prometheus.poll("a successful scrape of dunning", 20, dunning_up)
        # Several evaluations with a healthy worker and no bad input: no dead-letter alert yet.
        await asyncio.sleep(3)
        assert prometheus.dead_letter_alerts() == []

        await publish(workers.bootstrap, [("billing.bill.v1", b"ACC-prom-1", b"{not json")])

        def firing():
            return [a for a in prometheus.dead_letter_alerts() if a["state"] == "firing"]

        alerts = await prometheus.poll("WuguanDeadLetters firing", 30, firing)
        assert len(alerts) == 1
        labels = alerts[0]["labels"]
        assert (labels["service"], labels["topic"], labels["severity"]) == ("dunning", "billing.bill.v1", "warning")
        assert float(alerts[0]["value"]) == 1
        assert alerts[0]["annotations"]["runbook_url"] == "docs/operations/runbooks.md#wuguandeadletters"
        # The worker's own label set reached Prometheus unrenamed (honor_labels).
        # Every (topic, code) series exists from the start at 0; only the bad input's moved.
        series = prometheus.get("/api/v1/series", **{"match[]": "wuguan_dead_letters_total"})
        assert series and all(s.get("exported_service") is None and s["service"] == "dunning" for s in series)
        moved = prometheus.get("/api/v1/query", query="wuguan_dead_letters_total > 0")["result"]
        assert [(m["metric"]["topic"], m["metric"]["code"]) for m in moved] == [("billing.bill.v1", "malformed_json")]
    finally:
        prometheus.stop()
    assert prometheus.process.returncode is not None


async def test_gauge_alerts_fire_while_a_breach_lasts_and_clear_after_in_a_real_prometheus(database_url, tmp_path):
    """D.REPLY_15D and CP4.RESTORE_48H from the finance API's gauges, through the production
    `wuguan-finance` scrape job: firing while disputes are unanswered and a line is not restored
    past its deadline, with the count as value; the restoration alert clears once it completes."""
    from ..integration.test_finance_gauges import gauge_scenario, serve_api

    wave1, wave2 = gauge_scenario()
    async with serve_api(database_url, wave1) as api:
        prometheus = Prometheus(tmp_path, {}, finance_port=api.port)
        try:
            await prometheus.poll("prometheus ready", 20, lambda: "Ready" in prometheus.get("/-/ready"))

            def finance_up():
                return prometheus.get("/api/v1/query", query='up{job="wuguan-finance",service="finance"} == 1')["result"]

            await prometheus.poll("a successful scrape of the finance API", 20, finance_up)

            def firing(name: str, value: float):
                def check():
                    found = [a for a in prometheus.alerts(name) if a["state"] == "firing"]
                    return found if found and float(found[0]["value"]) == value else None
                return check

            [dispute] = await prometheus.poll("WuguanDisputeReplyOverdue at 2", 30, firing("WuguanDisputeReplyOverdue", 2))
            [restore] = await prometheus.poll("WuguanRestorationOverdue at 1", 30, firing("WuguanRestorationOverdue", 1))
            assert (dispute["labels"]["service"], dispute["labels"]["severity"]) == ("billing_guard", "warning")
            assert (restore["labels"]["service"], restore["labels"]["severity"]) == ("billing_guard", "critical")
            assert restore["annotations"]["runbook_url"] == "docs/operations/runbooks.md#wuguanrestorationoverdue"
            # Pending only until the first scrape found the job: never firing.
            assert [a for a in prometheus.alerts("WuguanFinanceApiDown") if a["state"] == "firing"] == []

            await api.append(wave2)  # one dispute answered late, the pending restoration completed
            await prometheus.poll("WuguanDisputeReplyOverdue at 1", 30, firing("WuguanDisputeReplyOverdue", 1))
            await prometheus.poll("WuguanRestorationOverdue cleared", 30,
                                  lambda: not prometheus.alerts("WuguanRestorationOverdue"))
        finally:
            prometheus.stop()
