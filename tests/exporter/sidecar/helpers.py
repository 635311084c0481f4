"""What the sidecar tests share: a running sidecar on a free port, HTTP helpers, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from exporter.config import SidecarConfig
from exporter.kafka import Producer
from exporter.kafka.embedded import free_port
from exporter.sidecar import Sidecar
from tests.support.fake_kafka import FakeLog, FakeProducer

MODEL = {"name": "sklearn-iris", "version": "4", "namespace": "prod"}
SUMMARY_PARTITIONS = 6


def sidecar_config(**sections: Any) -> SidecarConfig:
    """A sidecar config on a free loopback port, GPU off, quick batches; ``sections`` override."""
    values: dict[str, Any] = {
        "model": MODEL,
        "gpu": {"mode": "off"},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "kafka": {"batch_max_seconds": 0.2},
    }
    for name, section in sections.items():
        values[name] = {**values.get(name, {}), **section} if isinstance(section, dict) else section
    return SidecarConfig(**values)


class FakeClock:
    """Wall time that moves only when told to (the join TTL and summary buckets read it)."""

    def __init__(self, now: float = 1_795_889_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def running(
    config: SidecarConfig,
    producer: Callable[[SidecarConfig], Producer] | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[tuple[Sidecar, FakeLog]]:
    """A started sidecar forwarding into an in-memory log (or ``producer``), stopped after."""
    log = FakeLog()
    sidecar = Sidecar(
        config,
        producer_factory=producer or (lambda _: FakeProducer(log)),
        clock=clock,
        # The in-memory log has no broker to ask: say the summaries topic has SUMMARY_PARTITIONS.
        partition_count=None if producer is not None else (lambda topic: SUMMARY_PARTITIONS),
    ).start()
    try:
        yield sidecar, log
    finally:
        sidecar.stop(drain_timeout_s=5.0)


def url(sidecar: Sidecar, path: str = "/") -> str:
    return f"http://127.0.0.1:{sidecar.port}{path}"


def post(sidecar: Sidecar, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url(sidecar, path), content=body, headers=headers or {}, timeout=10.0)


def post_json(sidecar: Sidecar, path: str, document: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return post(sidecar, path, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


def metrics(sidecar: Sidecar) -> dict[str, float]:
    """Every sample of /metrics as ``{'name{labels}': value}``."""
    text = httpx.get(url(sidecar, "/metrics"), timeout=10.0).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def sample(sidecar: Sidecar, name: str, **labels: str) -> float | None:
    """One sample by name and labels (label order as prometheus_client writes it: sorted)."""
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return metrics(sidecar).get(f"{name}{{{inner}}}" if labels else name)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
