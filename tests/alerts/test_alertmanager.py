"""The generated alertmanager.yaml: amtool's checks and routing, then a real Alertmanager that
inhibits drift alerts of a model without traffic, pages PagerDuty (a local fake speaking the
Events API v2 shape) with the routing key from its file, and sends retraining recommendations
to the relay (a local fake) with the bearer token from its file."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerts import dump_yaml, render_alertmanager
from alerts.alertmanager import DEFAULT_RECEIVER, PAGERDUTY_RECEIVER, RELAY_RECEIVER
from alerts.rules import (
    CONCEPT_DRIFT,
    EXPORTER_DOWN,
    FEATURE_DRIFT,
    GPU_LATENCY,
    PREDICTIONS_ABSENT,
    RETRAIN,
)
from exporter.config import AlertsConfig
from exporter.kafka.embedded import free_port

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
TOKEN = "relay-token-Zm9vYmFy"


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (Debian package prometheus-alertmanager) is installed by `make test` via .ci/system-packages"
    return path


class Recorder(ThreadingHTTPServer):
    """A receiver that answers 200 and keeps every request: (headers, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append((dict(self.headers), json.loads(body)))
                self.send_response(202)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def config_for(
    tmp_path: Path, pagerduty: Recorder | None = None, relay: Recorder | None = None, **settings: Any
) -> Path:
    (tmp_path / "routing-key").write_text(ROUTING_KEY + "\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    alertmanager: dict[str, Any] = {
        "group_wait": "1s",
        "group_interval": "1s",
        "pagerduty": {"routing_key_file": str(tmp_path / "routing-key")},
        "relay": {"credentials_file": str(tmp_path / "token")},
    }
    if pagerduty:
        alertmanager["pagerduty"]["url"] = f"{pagerduty.url}/v2/enqueue"
    if relay:
        alertmanager["relay"]["url"] = f"{relay.url}/v1/alertmanager"
    path = tmp_path / "alertmanager.yaml"
    path.write_text(dump_yaml(render_alertmanager(AlertsConfig(alertmanager=alertmanager, **settings))))
    return path


def amtool(*args: str) -> str:
    result = subprocess.run([binary("amtool"), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"amtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_amtool_check_config_accepts_the_default_and_a_configured_file(tmp_path):
    (tmp_path / "default.yaml").write_text(dump_yaml(render_alertmanager()))
    assert "SUCCESS" in amtool("check-config", str(tmp_path / "default.yaml"))
    assert "SUCCESS" in amtool("check-config", str(config_for(tmp_path)))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": RETRAIN, "severity": "info", "model": "fraud"}, RELAY_RECEIVER),
        ({"alertname": EXPORTER_DOWN, "severity": "critical"}, PAGERDUTY_RECEIVER),
        ({"alertname": GPU_LATENCY, "severity": "critical", "model": "fraud"}, PAGERDUTY_RECEIVER),
        ({"alertname": FEATURE_DRIFT, "severity": "warning", "model": "fraud"}, DEFAULT_RECEIVER),
        ({"alertname": "SomethingElse", "severity": "info"}, DEFAULT_RECEIVER),
    ],
)
def test_routes(tmp_path, labels, receiver):
    path = config_for(tmp_path)
    got = amtool("config", "routes", "test", f"--config.file={path}", *(f"{k}={v}" for k, v in labels.items()))
    assert got.split() == [receiver]


def test_no_paged_severities_means_no_pagerduty_receiver():
    config = render_alertmanager(AlertsConfig(alertmanager={"pagerduty": {"severities": []}}))
    assert PAGERDUTY_RECEIVER not in {receiver["name"] for receiver in config["receivers"]}


@contextmanager
def running_alertmanager(tmp_path: Path, **settings: Any) -> Iterator[dict[str, Any]]:
    """A real Alertmanager on the generated config (``settings`` of AlertsConfig), its
    PagerDuty and relay receivers local recorders."""
    pagerduty, relay = Recorder(), Recorder()
    port = free_port()
    process = subprocess.Popen(
        [
            binary("prometheus-alertmanager"),
            f"--config.file={config_for(tmp_path, pagerduty, relay, **settings)}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "alertmanager.log", "wb"),
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v2"
        wait_for(lambda: _get(f"{api}/status") is not None, "Alertmanager to start")
        yield {"api": api, "pagerduty": pagerduty, "relay": relay}
    finally:
        process.terminate()
        process.wait(timeout=20)
        pagerduty.shutdown()
        relay.shutdown()


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[dict[str, Any]]:
    with running_alertmanager(tmp_path) as running:
        yield running


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


def _post(url: str, payload: Any) -> None:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def wait_for(predicate, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} summary", "description": "d", "runbook_url": f"https://rb.test/{name}.md"},
    }


def test_inhibition_paging_and_relay_delivery(alertmanager):
    fraud, churn = {"model": "fraud", "model_version": "7"}, {"model": "churn", "model_version": "3"}
    _post(
        f"{alertmanager['api']}/alerts",
        [
            alert(PREDICTIONS_ABSENT, "warning", **fraud),
            alert(FEATURE_DRIFT, "warning", **fraud, window="1h"),
            alert(CONCEPT_DRIFT, "warning", **fraud, window="1h", signal="prediction_drift"),
            alert(RETRAIN, "info", **fraud, reason="feature_drift"),
            alert(FEATURE_DRIFT, "warning", **churn, window="1h"),
            alert(RETRAIN, "info", **churn, reason="stale"),
            alert(EXPORTER_DOWN, "critical", job="model-health-sidecar", instance="10.0.0.1:9878"),
        ],
    )

    def states() -> dict[tuple[str, str], str] | None:
        alerts = _get(f"{alertmanager['api']}/alerts")
        if not alerts or len(alerts) < 7:
            return None
        return {(a["labels"]["alertname"], a["labels"].get("model", "")): a["status"]["state"] for a in alerts}

    def settled() -> dict[tuple[str, str], str] | None:
        got = states()
        return got if got and got[(FEATURE_DRIFT, "fraud")] == "suppressed" else None

    got = wait_for(settled, "the drift alerts of the model without traffic to be inhibited")
    assert got == {
        (PREDICTIONS_ABSENT, "fraud"): "active",
        (FEATURE_DRIFT, "fraud"): "suppressed",
        (CONCEPT_DRIFT, "fraud"): "suppressed",
        (RETRAIN, "fraud"): "suppressed",
        (FEATURE_DRIFT, "churn"): "active",
        (RETRAIN, "churn"): "active",
        (EXPORTER_DOWN, ""): "active",
    }

    relay, pagerduty = alertmanager["relay"], alertmanager["pagerduty"]
    headers, body = wait_for(lambda: relay.requests and relay.requests[0], "a notification to the relay")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert body["receiver"] == RELAY_RECEIVER and body["status"] == "firing"
    assert [(a["labels"]["alertname"], a["labels"]["model"], a["labels"]["reason"]) for a in body["alerts"]] == [
        (RETRAIN, "churn", "stale")
    ]
    headers, event = wait_for(lambda: pagerduty.requests and pagerduty.requests[0], "a page to PagerDuty")
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["summary"] == f"{EXPORTER_DOWN} summary"
    assert event["links"] == [{"href": f"https://rb.test/{EXPORTER_DOWN}.md", "text": "Runbook"}]
    time.sleep(2.5)  # two more group intervals: nothing else may arrive at either receiver
    assert [b["alerts"][0]["labels"]["model"] for _, b in relay.requests] == ["churn"]
    assert {e["payload"]["summary"] for _, e in pagerduty.requests} == {f"{EXPORTER_DOWN} summary"}


def test_pagerduty_links_the_drift_report_of_a_drift_page_and_no_empty_link_elsewhere(tmp_path):
    """With ``aggregator_url``, a paged drift alert carries its ``report_url`` to PagerDuty as a
    second link; an alert without one (a target down) keeps the runbook link alone."""
    from alerts.rules import alert_rules

    settings = {"aggregator_url": "https://mh.example.test"}
    drift_rule = next(r for r in alert_rules(AlertsConfig(**settings)) if r["alert"] == FEATURE_DRIFT)
    assert "report_url" in drift_rule["annotations"]
    report = "https://mh.example.test/report/fraud?version=7&window=1h"  # as Prometheus renders the template
    drift = alert(FEATURE_DRIFT, "critical", model="fraud", model_version="7", window="1h")
    drift["annotations"]["report_url"] = report
    down = alert(EXPORTER_DOWN, "critical", job="model-health-sidecar", instance="10.0.0.1:9878")
    with running_alertmanager(tmp_path, **settings) as running:
        _post(f"{running['api']}/alerts", [drift, down])
        pagerduty = running["pagerduty"]
        wait_for(lambda: len(pagerduty.requests) >= 2, "both pages")
        links = {e["payload"]["summary"]: e["links"] for _, e in pagerduty.requests}
    assert links[f"{FEATURE_DRIFT} summary"] == [
        {"href": f"https://rb.test/{FEATURE_DRIFT}.md", "text": "Runbook"},
        {"href": report, "text": "Drift report"},
    ]
    assert links[f"{EXPORTER_DOWN} summary"] == [{"href": f"https://rb.test/{EXPORTER_DOWN}.md", "text": "Runbook"}]
