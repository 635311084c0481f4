"""GPU test helpers: where the recorded H200 capture is, a hand-moved clock, scrape parsing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.gpu.fake import DEFAULT_FIXTURES

REPO = Path(__file__).resolve().parents[2]


def capture_dir() -> Path:
    """The recorded H200 capture: the copy vendored with exporter.gpu (``exporter/gpu/fixtures/h200``).

    Tests never read outside the repository; ``tests/exporter/gpu/test_fake.py`` pins the copy's
    checksums so it stays the recorded capture byte for byte.
    """
    return DEFAULT_FIXTURES


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(registry: CollectorRegistry) -> Samples:
    """{sample name: {sorted label pairs: value}} from a real text-format scrape."""
    text = generate_latest(registry).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def only(samples: Samples, name: str) -> float:
    """The value of the one sample called ``name``."""
    series = samples.get(name, {})
    assert len(series) == 1, f"{name}: expected one series, got {series}"
    return next(iter(series.values()))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; a generous timeout, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(0.005)
