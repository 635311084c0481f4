"""Fixtures for the relay's tests: secrets, a fake target, and the relay itself in-process.

Configs load with an explicit empty environment, and relays started as processes get this
process's environment without ``MODEL_HEALTH_`` variables: overrides in the developer's shell
never reach them.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import RelayConfig, load_config
from exporter.kafka.embedded import free_port
from exporter.relay.service import serve
from tests.exporter.relay.fake_target import FakeTarget, wait_until

TOKEN = "am-token-3f9c2a"
# Small backoffs keep retry tests quick; the shape of the schedule is tested on its own.
FAST_RETRY = {"max_attempts": 4, "base_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a relay started as a process: this one's, less ``MODEL_HEALTH_`` overrides."""
    inherited = {key: value for key, value in os.environ.items() if not key.upper().startswith("MODEL_HEALTH_")}
    return {**inherited, **extra}


@pytest.fixture
def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_config(directory: Path, secret: str, target_url: str, **overrides: Any) -> Path:
    """A relay config (and its secret files) in ``directory``; ``overrides`` merge section-wise."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(TOKEN + "\n")
    (directory / "secret").write_text(secret + "\n")
    config: dict[str, Any] = {
        "target": {"kind": "generic", "url": target_url, "secret_file": "secret", "retry": FAST_RETRY},
        "auth": {"token_file": "token"},
        "http": {"host": "127.0.0.1", "port": 9880},
        "state": {"dir": "state"},
    }
    path = directory / "relay.yaml"
    path.write_text(yaml.safe_dump(merge(config, overrides)))
    return path


@dataclass
class Relay:
    port: int
    config: RelayConfig

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(
        self,
        payload: Any = None,
        *,
        token: str | None = TOKEN,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if content is None:
            return httpx.post(f"{self.url}/v1/alertmanager", json=payload, headers=sent, timeout=30)
        return httpx.post(f"{self.url}/v1/alertmanager", content=content, headers=sent, timeout=30)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(self.url)

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Clock:
    """Wall time plus an offset the test moves forward (cooldowns measured on it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start_relay(tmp_path: Path, secret: str, clock: Clock) -> Iterator[Callable[..., Relay]]:
    """``start_relay(target, **overrides)`` → a relay serving in this process, stopped after."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(fake: FakeTarget, directory: Path | None = None, **overrides: Any) -> Relay:
        overrides = merge({"http": {"port": free_port()}}, overrides)
        url = f"{fake.url}/hooks/retrain" if fake.kind == "generic" else fake.url
        path = write_config(directory or tmp_path / f"relay{len(running)}", secret, url, **overrides)
        config = load_config(path, RelayConfig, environ={})
        stop, ports, errors = threading.Event(), [], []

        def run() -> None:
            try:
                serve(config, stop, on_ready=ports.append, clock=clock)
            except BaseException as exc:  # noqa: BLE001 - surfaced by the wait below
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        running.append((stop, thread))
        wait_until(lambda: bool(ports or errors), 30, "the relay to listen")
        if errors:
            raise errors[0]
        return Relay(ports[0], config)

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(30)


@pytest.fixture
def target(secret: str) -> Iterator[FakeTarget]:
    fake = FakeTarget("generic", secret).start()
    yield fake
    fake.stop()
