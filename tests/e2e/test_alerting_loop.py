"""The whole alerting loop with real parts, end to end, on loopback.

One scenario, started once for the module:

    traffic (the live demo's generator: drifted inputs, labels 1 s later, a weaker score)
      → tansu broker → `model-health aggregator` (10 s window of 1 s buckets)
      → Prometheus (1 s scrapes and rule evaluations; the generated rules, `for`s shortened)
      → Alertmanager (the generated config, seconds-long grouping and repeats)
      → a PagerDuty Events API v2 stand-in            (critical alerts)
      → `model-health relay` → a retraining target     (ModelHealthRetrainRecommended)

plus two `model-health node --fake-nvml` agents replaying the recorded H200 (one node whose
GPU process belongs to a pod, one where it belongs to no pod), so the GPU dashboard has data.
Everything the stack generates is used as generated, only config keys change: every alert
`for`, FeatureDrift's severity (critical, so it pages), Alertmanager's intervals, the
PagerDuty and relay URLs, the relay's cooldown (600 s, longer than the run).

The checks: the pager gets a valid Events v2 trigger with the expected fields; the target gets
exactly one request, signed so that ``standardwebhooks.Webhook(secret).verify`` accepts it,
although Alertmanager keeps re-sending the notification (the relay counts those as duplicates
or cooldown skips); every dashboard panel's query and variable returns data from this
Prometheus.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import secrets
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks import Webhook

import dashboards
from alerts import dump_yaml, render_alertmanager, render_rules, runbook_url
from alerts.rules import CONCEPT_DRIFT, FEATURE_DRIFT, RETRAIN
from exporter.config import AlertsConfig, DashboardsConfig
from exporter.demo.live import (
    DEADLETTER,
    LABELS,
    MODEL,
    PREDICTIONS,
    VERSION,
    DemoOptions,
    aggregator_config,
    background,
    build_profile,
    send_traffic,
)
from exporter.demo.traffic import TrafficGenerator
from exporter.kafka import ProducerSettings, open_producer
from exporter.kafka.embedded import EmbeddedBroker, free_port
from tests.exporter.relay.fake_target import FakeTarget, Received
from tests.support.gpu import add_injected_sidecar, capture_dir
from tests.support.pagerduty import PagerDutyStandIn
from tests.support.services import Process, PrometheusApi, binary, log_tail, running, scrape, wait_for, wait_ready

pytestmark = pytest.mark.slow

WINDOW_SECONDS = 10
WINDOW = f"{WINDOW_SECONDS}s"
RATE = 200.0  # predictions/s: a 10 s window holds ~2,000, well past min_samples (500)
# Alertmanager re-sends a still-firing group this often; the relay's cooldown spans the run.
REPEAT = "2s"
COOLDOWN_SECONDS = 600.0
# Every wait polls; these bound a stuck run, not a normal one (which needs seconds).
ALERT_TIMEOUT = 120.0
DATA_TIMEOUT = 60.0
MODEL_HEALTH = str(Path(sys.executable).with_name("model-health"))
# The fake NVML's one GPU process (pid in the H200 capture) and the pod it runs in on node A.
GPU_PID = 576
POD_UID = "8f2c4d1e-5b6a-4c3d-9e8f-0a1b2c3d4e5f"
CONTAINER_ID = "3b" * 32


@dataclass
class Loop:
    workdir: Path
    prometheus: PrometheusApi
    alerts_config: AlertsConfig
    pagerduty: PagerDutyStandIn
    target: FakeTarget
    relay_url: str
    routing_key: str
    webhook_secret: str
    traffic_started: float  # time.monotonic() when the first records went out
    processes: list[Process] = field(default_factory=list)

    def since_traffic(self) -> float:
        return time.monotonic() - self.traffic_started

    def check(self) -> None:
        """Fail at once, with its log, if any process of the loop died."""
        for process in self.processes:
            process.check()

    def relay_metric(self, name: str, **labels: str) -> float:
        return scrape(f"{self.relay_url}/metrics").get((name, tuple(sorted(labels.items()))), 0.0)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{log_tail(p.log, 15)}" for p in self.processes)


def _alerts_config(workdir: Path, pagerduty: PagerDutyStandIn, relay_port: int, aggregator_port: int) -> AlertsConfig:
    """The generated alerting config with the durations shortened, the receivers local and the
    alerts linking to the aggregator's drift report."""
    return AlertsConfig(
        aggregator_url=f"http://127.0.0.1:{aggregator_port}",
        # Paging FeatureDrift (a warning by default) makes the drift scenario reach PagerDuty.
        feature_drift={"for_duration": "2s", "severity": "critical"},
        concept_drift={"for_duration": "2s", "min_joined_labels": 100, "labels_range": "1m"},
        retrain={"for_duration": "3s"},
        alertmanager={
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": REPEAT,
            "pagerduty": {"routing_key_file": str(workdir / "pagerduty-routing-key"), "url": pagerduty.url},
            "relay": {
                "url": f"http://127.0.0.1:{relay_port}/v1/alertmanager",
                "credentials_file": str(workdir / "relay-token"),
                "repeat_interval": REPEAT,
            },
        },
    )


def _write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _fake_proc(root: Path, cgroup: str | None) -> Path:
    """A ``proc_root`` where the capture's GPU process lives in ``cgroup`` (None: it has exited),
    in a pod whose injected sidecar serves the demo's model: the GPU-cost panels have data."""
    root.mkdir(parents=True)
    if cgroup is not None:
        (root / str(GPU_PID)).mkdir()
        (root / str(GPU_PID) / "cgroup").write_text(f"0::{cgroup}\n")
        add_injected_sidecar(root, GPU_PID + 1, POD_UID, MODEL, VERSION)
    return root


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    workdir = tmp_path_factory.mktemp("alerting-loop")
    routing_key = secrets.token_hex(16)  # PagerDuty integration keys are 32 characters
    relay_token = secrets.token_urlsafe(24)
    webhook_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    (workdir / "pagerduty-routing-key").write_text(routing_key + "\n")
    (workdir / "relay-token").write_text(relay_token + "\n")
    (workdir / "webhook-secret").write_text(webhook_secret + "\n")
    # The children read their config files only; no MODEL_HEALTH_* override may leak in.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MODEL_HEALTH_")}
    ports = {name: free_port() for name in ("prometheus", "alertmanager", "relay", "node-a", "node-b", "aggregator")}

    with ExitStack() as stack:
        pagerduty = PagerDutyStandIn(routing_key).start()
        stack.callback(pagerduty.stop)
        target = FakeTarget("generic", webhook_secret).start()
        stack.callback(target.stop)
        broker = stack.enter_context(EmbeddedBroker())
        broker.create_topics([PREDICTIONS, LABELS, DEADLETTER], exist_ok=True)

        # The demo's scenario, shrunk: drifted from the first record, labels a second later,
        # a 10 s window of 1 s buckets evaluated every second.
        options = DemoOptions(
            rate=RATE,
            drift_after=0.0,
            label_delay=1.0,
            bucket_seconds=1,
            window_seconds=WINDOW_SECONDS,
            port=ports["aggregator"],
            evaluation_seconds=1.0,
            workdir=workdir,
        )
        producer = open_producer(ProducerSettings(broker.bootstrap_servers))
        stack.callback(producer.close)
        # Records no decoder can use: the pipeline dashboard's rejects have something to show.
        producer.send(PREDICTIONS, b"{not json", key=b"junk")
        producer.send(PREDICTIONS, json.dumps({"model": "unknown-model", "request_id": "x", "prediction": 1}).encode())
        producer.flush(timeout_s=10.0)

        alerts_config = _alerts_config(workdir, pagerduty, ports["relay"], ports["aggregator"])
        # (process, readiness URL): all are started first and waited for together at the end.
        started: list[tuple[Process, str]] = []

        def start(name: str, argv: list[str], ready_url: str) -> None:
            process = stack.enter_context(running(name, argv, workdir / f"{name}.log", env=env))
            started.append((process, ready_url))

        relay_config = _write_yaml(
            workdir / "relay.yaml",
            {
                "auth": {"token_file": "relay-token"},
                "retrain": {"cooldown_seconds": COOLDOWN_SECONDS},
                "target": {
                    "kind": "generic",
                    "url": f"{target.url}/hooks/retrain",
                    "secret_file": "webhook-secret",
                    "retry": {"max_attempts": 3, "base_backoff_seconds": 0.2, "max_backoff_seconds": 1.0},
                },
                "http": {"host": "127.0.0.1", "port": ports["relay"]},
                "state": {"dir": "relay-state"},
            },
        )
        start(
            "relay", [MODEL_HEALTH, "relay", "--config", str(relay_config)], f"http://127.0.0.1:{ports['relay']}/readyz"
        )
        (workdir / "alertmanager.yaml").write_text(dump_yaml(render_alertmanager(alerts_config)))
        start(
            "alertmanager",
            [
                binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={workdir / 'alertmanager.yaml'}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            f"http://127.0.0.1:{ports['alertmanager']}/-/ready",
        )
        pod_cgroup = (
            "/kubepods.slice/kubepods-burstable.slice/"
            f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CONTAINER_ID}.scope"
        )
        for node, cgroup in (("node-a", pod_cgroup), ("node-b", None)):
            node_config = _write_yaml(
                workdir / f"{node}.yaml",
                {
                    "gpu": {"mode": "node", "interval_seconds": 1, "slow_interval_seconds": 2},
                    "http": {"host": "127.0.0.1", "port": ports[node]},
                    "proc_root": str(_fake_proc(workdir / f"proc-{node}", cgroup)),
                },
            )
            start(
                node,
                [MODEL_HEALTH, "node", "--config", str(node_config), "--fake-nvml", str(capture_dir())],
                f"http://127.0.0.1:{ports[node]}/readyz",
            )

        # The profile is built while those start.
        profile = build_profile(workdir, options)
        aggregator_port = aggregator_config(workdir, options, broker.bootstrap_servers, profile).http.port
        assert aggregator_port == ports["aggregator"], "the alerts link to this port"
        # Checkpoint often, so the pipeline dashboard's checkpoint age has a value early.
        aggregator_yaml = yaml.safe_load((workdir / "aggregator.yaml").read_text())
        aggregator_yaml["state"]["checkpoint_interval_seconds"] = 2.0
        _write_yaml(workdir / "aggregator.yaml", aggregator_yaml)
        start(
            "aggregator",
            [MODEL_HEALTH, "aggregator", "--config", str(workdir / "aggregator.yaml")],
            f"http://127.0.0.1:{aggregator_port}/readyz",
        )

        jobs = alerts_config.jobs
        (workdir / "rules.yaml").write_text(dump_yaml(render_rules(alerts_config)))
        _write_yaml(
            workdir / "prometheus.yml",
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": ["rules.yaml"],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]
                },
                "scrape_configs": [
                    {"job_name": jobs.aggregator, "static_configs": [{"targets": [f"127.0.0.1:{aggregator_port}"]}]},
                    {"job_name": jobs.relay, "static_configs": [{"targets": [f"127.0.0.1:{ports['relay']}"]}]},
                    {
                        "job_name": jobs.node,
                        "static_configs": [
                            {"targets": [f"127.0.0.1:{ports['node-a']}", f"127.0.0.1:{ports['node-b']}"]}
                        ],
                    },
                ],
            },
        )
        start(
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            f"http://127.0.0.1:{ports['prometheus']}/-/ready",
        )

        # On the way out, SIGTERM every process at once; each one's own exit then only waits.
        stack.callback(lambda: [process.popen.terminate() for process, _ in started if process.alive()])
        # Traffic flows before the components are ready: the aggregator reads the topics from
        # the earliest offset, so nothing is lost while it starts.
        traffic = TrafficGenerator(
            MODEL,
            VERSION,
            time.time(),
            rate=RATE,
            drift_after=0.0,
            label_delay=1.0,
            shape=options.shape,
            seed=options.seed,
        )
        stack.enter_context(background("traffic", lambda stop: send_traffic(traffic, producer, stop)))
        traffic_started = time.monotonic()
        for process, url in started:
            wait_ready(process, url)

        yield Loop(
            workdir=workdir,
            prometheus=PrometheusApi(f"http://127.0.0.1:{ports['prometheus']}"),
            alerts_config=alerts_config,
            pagerduty=pagerduty,
            target=target,
            relay_url=f"http://127.0.0.1:{ports['relay']}",
            routing_key=routing_key,
            webhook_secret=webhook_secret,
            traffic_started=traffic_started,
            processes=[process for process, _ in started],
        )


def _firing(loop: Loop) -> set[tuple[str, str]]:
    """(alertname, signal or reason) of this model's firing alerts, as Prometheus has them."""
    loop.check()
    return {
        (a["labels"]["alertname"], a["labels"].get("signal") or a["labels"].get("reason") or "")
        for a in loop.prometheus.alerts()
        if a["state"] == "firing" and a["labels"].get("model") == MODEL
    }


def test_drift_pages_pagerduty_asks_for_one_retraining_and_fills_every_dashboard(loop: Loop) -> None:
    # One test, the checks in the order the loop reaches them: under `pytest -n 2` separate
    # tests could land on both workers and start the whole loop twice.
    # The figures printed (seconds since the traffic started) are for reading, not asserted.
    _every_component_is_scraped(loop)
    _drift_fires_the_drift_concept_and_retrain_alerts(loop)
    print(f"alerting loop: drift, concept drift and retrain alerts firing after {loop.since_traffic():.1f}s")
    _pagerduty_gets_an_events_v2_trigger_for_the_critical_drift_alert(loop)
    print(f"alerting loop: paged (and repeated) after {loop.since_traffic():.1f}s")
    _target_gets_exactly_one_signed_request_despite_repeated_notifications(loop)
    print(f"alerting loop: one signed retraining request, repeats absorbed, after {loop.since_traffic():.1f}s")
    _every_dashboard_panel_and_variable_returns_data(loop)
    print(f"alerting loop: every dashboard query has data after {loop.since_traffic():.1f}s")


def _every_component_is_scraped(loop: Loop) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        loop.check()
        targets = loop.prometheus.targets()
        return targets if len(targets) == 4 and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_up, "every scrape target up", DATA_TIMEOUT)
    jobs = loop.alerts_config.jobs
    assert sorted(t["labels"]["job"] for t in targets) == sorted([jobs.aggregator, jobs.relay, jobs.node, jobs.node])


def _drift_fires_the_drift_concept_and_retrain_alerts(loop: Loop) -> None:
    """The generated rules, on the aggregator's real numbers, fire what the scenario should."""
    wanted = {
        (FEATURE_DRIFT, ""),
        (CONCEPT_DRIFT, "performance_drop"),  # from the joined labels: accuracy, F1, AUC fall
        (RETRAIN, "feature_drift"),
        (RETRAIN, "performance_drop"),
    }
    try:
        wait_for(lambda: wanted <= _firing(loop), f"{sorted(wanted)} to fire", ALERT_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; firing: {sorted(_firing(loop))}\n{loop.logs()}") from None
    drifting = {
        r["metric"]["feature"]
        for r in loop.prometheus.query(
            f'model_health_feature_drift_detected{{model="{MODEL}", window="{WINDOW}"}} == 1'
        )
    }
    assert drifting and drifting <= set(DemoOptions().shape.drifted_columns()), "only the features the traffic moved"


def _pagerduty_gets_an_events_v2_trigger_for_the_critical_drift_alert(loop: Loop) -> None:
    def pages() -> list[dict[str, Any]]:
        loop.check()
        return [e for e in loop.pagerduty.events if e["payload"]["custom_details"].get("model") == MODEL]

    # Two: the first page and one of Alertmanager's repeats of it.
    events = wait_for(lambda: len(pages()) >= 2 and pages(), "a PagerDuty trigger and its repeat", ALERT_TIMEOUT)
    event = events[0]
    assert event["routing_key"] == loop.routing_key  # read by Alertmanager from routing_key_file
    assert event["event_action"] == "trigger"
    assert re.fullmatch(r"[0-9a-f]{64}", event["dedup_key"]), event["dedup_key"]  # Alertmanager's group key hash
    # A repeat carries the same dedup_key: PagerDuty folds it into the open incident.
    assert {e["dedup_key"] for e in events} == {event["dedup_key"]}
    payload = event["payload"]
    assert payload["severity"] == "critical"
    drift_page = re.compile(rf"{MODEL} v{VERSION}: [1-9]\d* features drift in the {WINDOW} window")
    assert drift_page.fullmatch(payload["summary"]), payload["summary"]
    assert payload["source"]
    details = payload["custom_details"]
    assert details["model"] == MODEL and details["model_version"] == VERSION and details["firing"] == "1"
    assert "has had at least 1 drifting feature(s)" in details["description"]
    report = f"{loop.alerts_config.aggregator_url}/report/{MODEL}?version={VERSION}&window={WINDOW}"
    assert event["links"] == [
        {"href": runbook_url(loop.alerts_config, FEATURE_DRIFT), "text": "Runbook"},
        {"href": report, "text": "Drift report"},
    ]
    # Following the page's link: the aggregator's drift report of that model and window.
    with urllib.request.urlopen(report, timeout=30) as response:
        page = response.read().decode()
    assert response.status == 200 and f"<title>Drift report: {MODEL} version {VERSION}</title>" in page
    assert re.search(r'<p class="verdict drifted">[1-9]\d* of \d+ features drifted</p>', page), page[:2000]
    assert loop.pagerduty.refused == []
    # Only the critical alert pages: concept drift (warning) and the retrain alert (info,
    # routed to the relay alone) never reach PagerDuty.
    assert all(drift_page.fullmatch(e["payload"]["summary"]) for e in loop.pagerduty.events)


def _target_gets_exactly_one_signed_request_despite_repeated_notifications(loop: Loop) -> None:
    def requests() -> list[Received]:
        loop.check()
        return loop.target.received

    first = wait_for(requests, "a retraining request at the target", ALERT_TIMEOUT)[0]

    def absorbed() -> bool:
        loop.check()
        skipped = sum(
            loop.relay_metric("model_health_relay_skipped_total", reason=r) for r in ("duplicate", "cooldown")
        )
        # The notification that delivered, then two more: the group's alerts change at most once
        # (the second reason joining), so at least one of them is a plain repeat.
        return loop.relay_metric("model_health_relay_notifications_total") >= 3 and skipped >= 2

    wait_for(absorbed, "Alertmanager's repeats to reach the relay and be skipped", ALERT_TIMEOUT)
    assert loop.relay_metric("model_health_relay_deliveries_total", target="generic", outcome="delivered") == 1
    received = loop.target.received
    # The cooldown (COOLDOWN_SECONDS) outlasts the whole run: one request is all it may send.
    assert len(received) == 1, [r.json for r in received]
    assert first.verified is True and first.answered == 200
    # Verify again here, as a receiver would: the signature covers id, timestamp and body.
    Webhook(loop.webhook_secret).verify(first.body, first.headers)
    body = first.json
    assert first.path == "/hooks/retrain"
    assert body["type"] == "model_health.retrain_recommended"
    assert body["id"] == first.headers["webhook-id"]
    assert body["model"] == MODEL and body["model_version"] == VERSION
    assert body["reasons"] and set(body["reasons"]) <= {"feature_drift", "performance_drop"}
    assert {a["labels"]["alertname"] for a in body["alerts"]} == {RETRAIN}


def _every_dashboard_panel_and_variable_returns_data(loop: Loop) -> None:
    values = {"model": MODEL, "model_version": VERSION, "window": WINDOW}
    pending: dict[str, str] = {}
    for key, board in dashboards.render_all(DashboardsConfig()).items():
        for expr in dashboards.panel_queries(board):
            pending.setdefault(dashboards.fill_variables(expr, values), f"{key} panel")
        for selector in dashboards.variable_queries(board):
            pending.setdefault(dashboards.fill_variables(selector, values), f"{key} variable")
    total = len(pending)

    def has_data(expr: str) -> bool:
        # A panel shows data when at least one series has a number (NaN draws nothing).
        return any(not math.isnan(float(r["value"][1])) for r in loop.prometheus.query(expr))

    def all_answered() -> bool:
        loop.check()
        for expr in [e for e in pending if has_data(e)]:
            del pending[expr]
        return not pending

    try:
        wait_for(all_answered, "every dashboard query to return data", DATA_TIMEOUT, interval=1.0)
    except AssertionError:
        pass
    assert not pending, f"{len(pending)} of {total} dashboard queries return no data:\n" + "\n".join(
        f"  {where}: {expr}" for expr, where in pending.items()
    )
