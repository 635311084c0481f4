"""A real Prometheus for the demo, where the ``prometheus`` program is installed.

It scrapes the aggregator and the sidecar under the ``job`` names the generated rules
expect (``AlertsConfig().jobs``) and evaluates those rules — :func:`alerts.render_rules`,
unchanged but for shorter ``for`` durations, so that alerts fire within the demo's
minutes rather than the production half hours. Its data lives in the demo's work
directory; the process is stopped (SIGTERM, then SIGKILL) on the way out.

:class:`PrometheusApi` reads back what the view shows: the rules loaded, the health of
each scrape job and the pending and firing alerts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts import dump_yaml, render_rules
from exporter.config import AlertsConfig

# Seconds between scrapes and between rule evaluations: short, so the view keeps up.
INTERVAL_SECONDS = 2
STOP_TIMEOUT_S = 10.0


def find_prometheus() -> str | None:
    """The installed ``prometheus`` program (Debian's package puts it on PATH), or None."""
    return shutil.which("prometheus")


def demo_alerts_config(aggregator_url: str | None = None) -> AlertsConfig:
    """The default alerting config with ``for`` durations a demo can wait for; with the
    aggregator's URL, the drift alerts link to its drift report (``report_url``)."""
    return AlertsConfig(
        feature_drift={"for_duration": "15s"},
        concept_drift={"for_duration": "15s", "min_joined_labels": 100, "labels_range": "1m"},
        retrain={"for_duration": "30s"},
        aggregator_url=aggregator_url,
    )


def rule_count(rules: dict[str, Any]) -> int:
    return sum(len(group["rules"]) for group in rules["groups"])


@dataclass(frozen=True)
class AlertState:
    name: str
    state: str  # pending | firing
    severity: str
    detail: str  # the labels that tell one alert of a kind from another

    @classmethod
    def from_api(cls, alert: dict[str, Any]) -> AlertState:
        labels = dict(alert.get("labels", {}))
        name = labels.pop("alertname", "?")
        severity = labels.pop("severity", "")
        shown = ("model", "window", "signal", "reason", "metric", "job")
        detail = " ".join(f"{key}={labels[key]}" for key in shown if key in labels)
        return cls(name, str(alert.get("state", "")), severity, detail)


@dataclass(frozen=True)
class PrometheusStatus:
    """What the demo's Prometheus says at one moment."""

    url: str
    rules: int
    targets: dict[str, str]  # job → health of its target (up, down, unknown)
    alerts: tuple[AlertState, ...]

    @property
    def firing(self) -> tuple[AlertState, ...]:
        return tuple(alert for alert in self.alerts if alert.state == "firing")

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "rules_loaded": self.rules,
            "targets": dict(sorted(self.targets.items())),
            "alerts": [
                {"alertname": a.name, "state": a.state, "severity": a.severity, "labels": a.detail} for a in self.alerts
            ],
        }


@dataclass(frozen=True)
class PrometheusApi:
    """The HTTP API of the Prometheus at ``url`` (``http://127.0.0.1:9090``)."""

    url: str

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=3) as response:
            document = json.loads(response.read())
        if document.get("status") != "success":
            raise ValueError(f"{path}: {document.get('error', document)}")
        return document["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def status(self) -> PrometheusStatus | None:
        """Rules, targets and alerts now; None while Prometheus does not answer."""
        try:
            groups = self._get("/api/v1/rules")["groups"]
            targets = self._get("/api/v1/targets")["activeTargets"]
            alerts = self._get("/api/v1/alerts")["alerts"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None
        return PrometheusStatus(
            url=self.url,
            rules=sum(len(group.get("rules", [])) for group in groups),
            targets={target["labels"].get("job", "?"): target.get("health", "unknown") for target in targets},
            alerts=tuple(
                sorted((AlertState.from_api(a) for a in alerts), key=lambda a: (a.state != "firing", a.name, a.detail))
            ),
        )


def write_config(workdir: Path, targets: dict[str, str], alerts_config: AlertsConfig) -> Path:
    """``prometheus.yml`` and ``rules.yaml`` in ``workdir``; ``targets`` maps job → host:port."""
    (workdir / "rules.yaml").write_text(dump_yaml(render_rules(alerts_config)))
    interval = f"{INTERVAL_SECONDS}s"
    document = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass
class DemoPrometheus:
    """A started Prometheus process and its API."""

    process: subprocess.Popen[bytes]
    api: PrometheusApi
    log: Path

    @property
    def url(self) -> str:
        return self.api.url

    def wait_ready(self, timeout_s: float) -> bool:
        """True once ``/-/ready`` answers; False if the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.api.ready():
                return True
            time.sleep(0.2)
        return False


@contextmanager
def running_prometheus(
    binary: str, workdir: Path, port: int, targets: dict[str, str], alerts_config: AlertsConfig
) -> Iterator[DemoPrometheus]:
    """Start Prometheus (not waiting for it: see :meth:`DemoPrometheus.wait_ready`); stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, targets, alerts_config)
    log = workdir / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield DemoPrometheus(process, PrometheusApi(f"http://127.0.0.1:{port}"), log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
