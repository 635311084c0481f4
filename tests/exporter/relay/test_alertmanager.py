"""A real Alertmanager (the Debian ``prometheus-alertmanager``) notifying the relay.

Alertmanager authenticates with the bearer token from a credentials file, groups the alerts,
and — with tiny intervals here — re-sends the group again and again while it fires. The
relay must turn all of that into one signed request, then acknowledge the resolution.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from exporter.kafka.embedded import free_port
from tests.exporter.relay.conftest import TOKEN
from tests.exporter.relay.fake_target import FakeTarget, wait_until

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(BINARY is None, reason="Alertmanager is not installed (.ci/system-packages)")


def receiver_config(relay_url: str, token_file: Path) -> dict:
    """The receiver the README recommends, with intervals shrunk to seconds for the test."""
    return {
        "route": {
            "receiver": "model-health-relay",
            "group_by": ["alertname", "model", "model_version"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1s",
        },
        "receivers": [
            {
                "name": "model-health-relay",
                "webhook_configs": [
                    {
                        "url": f"{relay_url}/v1/alertmanager",
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
                    }
                ],
            }
        ],
    }


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator:
    processes: list[subprocess.Popen[bytes]] = []

    def start(config: dict) -> str:
        port = free_port()
        config_path = tmp_path / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (tmp_path / "alertmanager.log").open("wb")
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config_path}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError((tmp_path / "alertmanager.log").read_text())
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "Alertmanager to be ready")
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _alert(model: str, version: str, *, ends: datetime | None = None) -> dict:
    now = datetime.now(UTC)
    body = {
        "labels": {
            "alertname": "ModelHealthRetrainRecommended",
            "model": model,
            "model_version": version,
            "severity": "warning",
        },
        "annotations": {"summary": f"{model} {version}: 5 of 12 features drift"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus:9090/graph",
    }
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


def test_alertmanager_repeats_become_one_signed_request(
    start_relay, target: FakeTarget, alertmanager, tmp_path: Path
) -> None:
    relay = start_relay(target)
    token_file = tmp_path / "am-token"
    token_file.write_text(TOKEN + "\n")
    am = alertmanager(receiver_config(relay.url, token_file))
    firing = [_alert("fraud", "7"), _alert("churn", "3")]
    assert httpx.post(f"{am}/api/v2/alerts", json=firing, timeout=30).status_code == 200

    # Two groups (one per model), each re-sent every second: wait for several notifications.
    wait_until(lambda: relay.metric("model_health_relay_notifications_total") >= 6, 60, "repeated notifications")
    requests = target.wait_for(2)
    assert sorted((r.json["model"], r.json["model_version"]) for r in requests) == [("churn", "3"), ("fraud", "7")]
    assert all(r.verified for r in requests)
    assert relay.metric("model_health_relay_skipped_total", reason="duplicate") >= 4
    assert relay.metric("model_health_relay_requests_rejected_total", reason="unauthorized") == 0
    fraud = next(r.json for r in requests if r.json["model"] == "fraud")
    assert fraud["reasons"] == ["fraud 7: 5 of 12 features drift"]
    assert fraud["externalURL"].startswith("http")
    assert len(fraud["alerts"][0]["fingerprint"]) == 16

    # Resolve fraud: Alertmanager sends the resolution, the relay acknowledges and ignores it.
    resolved = [_alert("fraud", "7", ends=datetime.now(UTC) - timedelta(seconds=1))]
    assert httpx.post(f"{am}/api/v2/alerts", json=resolved, timeout=30).status_code == 200
    wait_until(lambda: relay.metric("model_health_relay_skipped_total", reason="resolved") >= 1, 60, "the resolution")
    assert len(target.received) == 2


def test_wrong_token_in_alertmanager_is_refused_and_counted(
    start_relay, target: FakeTarget, alertmanager, tmp_path: Path
) -> None:
    relay = start_relay(target)
    token_file = tmp_path / "am-token"
    token_file.write_text("not-the-token\n")
    am = alertmanager(receiver_config(relay.url, token_file))
    assert httpx.post(f"{am}/api/v2/alerts", json=[_alert("fraud", "7")], timeout=30).status_code == 200
    wait_until(
        lambda: relay.metric("model_health_relay_requests_rejected_total", reason="unauthorized") >= 1,
        60,
        "Alertmanager's refused notification",
    )
    assert target.received == []
