"""The relay as a process (``model-health relay --config``): kill -9 and restarts lose nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.kafka.embedded import free_port
from tests.exporter.relay.conftest import TOKEN, child_env, scrape, write_config
from tests.exporter.relay.fake_target import FakeTarget, wait_until
from tests.exporter.relay.notifications import alert, notification

# Starting the CLI imports numpy, pyarrow and friends: slow on a loaded CI machine.
START_TIMEOUT = 90


class RelayProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RelayProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from exporter.cli import main; main()", "relay", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(PYTHONUNBUFFERED="1"),
            )
        wait_until(self._ready, START_TIMEOUT, f"the relay on port {self.port} (log: {self.log})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"relay exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def post(self, payload: dict) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/alertmanager", json=payload, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def metric(self, name: str, **labels: str) -> float:
        return scrape(self.url).get((name, tuple(sorted(labels.items()))), 0.0)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@pytest.fixture
def relay_process(tmp_path: Path, secret: str) -> Iterator:
    started: list[RelayProcess] = []

    def make(fake: FakeTarget, **overrides) -> RelayProcess:
        port = free_port()
        config = write_config(tmp_path, secret, f"{fake.url}/hooks/retrain", http={"port": port}, **overrides)
        relay = RelayProcess(config, port, tmp_path / "relay.log")
        started.append(relay)
        return relay

    yield make
    for relay in started:
        if relay.process is not None and relay.process.poll() is None:
            relay.kill()


def test_kill_9_with_a_pending_delivery_loses_nothing(relay_process, secret: str) -> None:
    target = FakeTarget("generic", secret)  # down: nothing listens on its port yet
    relay = relay_process(
        target, target={"retry": {"max_attempts": 100_000, "base_backoff_seconds": 0.05, "max_backoff_seconds": 0.2}}
    ).start()
    answer = relay.post(notification(alert("fraud", "7", fingerprint="k9")))
    assert answer.status_code == 200
    (queued,) = answer.json()["deliveries"]
    wait_until(
        lambda: relay.metric("model_health_relay_retries_total", target="generic") >= 2,
        60,
        "the relay to retry the unreachable target",
    )
    assert relay.kill() == -signal.SIGKILL
    target.start()
    try:
        relay.start()
        (request,) = target.wait_for(1, timeout=60)
        assert request.webhook_id == queued["id"]  # the id it had before the kill
        assert request.verified and request.json["model"] == "fraud"
        wait_until(
            lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="delivered") == 1
        )
        assert relay.metric("model_health_relay_deliveries_pending", target="generic") == 0
        assert len(target.received) == 1
        # And Alertmanager repeating the notification after the restart changes nothing.
        assert relay.post(notification(alert("fraud", "7", fingerprint="k9"))).json()["skipped"] == {"duplicate": 1}
    finally:
        target.stop()
    assert relay.kill(signal.SIGTERM) == 0
    assert "resuming 1 pending delivery" in relay.log.read_text()


def test_dedup_and_cooldown_survive_a_restart(relay_process, secret: str) -> None:
    target = FakeTarget("generic", secret).start()
    try:
        relay = relay_process(target).start()
        first = notification(alert("fraud", "7", fingerprint="c1"))
        (queued,) = relay.post(first).json()["deliveries"]
        target.wait_for(1)
        wait_until(lambda: relay.metric("model_health_relay_deliveries_pending", target="generic") == 0)
        assert relay.kill(signal.SIGTERM) == 0  # a clean stop on SIGTERM
        relay.start()
        assert relay.post(first).json() == {"deliveries": [], "skipped": {"duplicate": 1}}
        later = notification(alert("fraud", "7", fingerprint="c2", starts_at="2026-11-28T13:00:00Z"))
        assert relay.post(later).json() == {"deliveries": [], "skipped": {"cooldown": 1}}
        assert len(relay.post(notification(alert("churn", "2"))).json()["deliveries"]) == 1
        requests = target.wait_for(2)
        assert [r.json["model"] for r in requests] == ["fraud", "churn"]
        assert requests[0].webhook_id == queued["id"]
        assert relay.kill(signal.SIGINT) == 0
    finally:
        target.stop()
