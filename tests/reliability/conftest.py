"""The reliability suite's two sizes and its figures.

Every test here takes the ``scale`` fixture, parametrised twice: ``short`` runs in
``make test`` (``-m "not soak"``), ``soak`` carries the ``soak`` marker and runs only under
``make soak`` (``-m soak``). The soak's length comes from ``MODEL_HEALTH_SOAK_SECONDS``
(default 300) and the random moments of faults from ``MODEL_HEALTH_RELIABILITY_SEED``
(default fixed, so a failure replays; every figures line names its seed).

Every test records one figures line with the ``figures`` fixture; the run ends with a table
of them (see :mod:`tests.support.figures`).
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from detectors.profile import build_profile
from exporter.demo.synthetic import synthetic_table
from exporter.profiles import save_profile
from tests.exporter.aggregator.test_broker import SHAPE
from tests.exporter.relay.conftest import clock, secret, start_relay  # noqa: F401 - the relay's fixtures
from tests.support.broker import broker, make_topic  # noqa: F401 - a real tansu, and topics on it
from tests.support.durable_broker import durable_broker, s3_bucket  # noqa: F401 - tansu keeping data in S3 (moto)
from tests.support.figures import figures_property

T = TypeVar("T")
DEFAULT_SOAK_SECONDS = 300.0
DEFAULT_SEED = 20261128


@dataclass(frozen=True)
class Scale:
    """How big this run of a reliability test is."""

    soak: bool
    seconds: float  # the soak's length (MODEL_HEALTH_SOAK_SECONDS); short runs ignore it
    seed: int

    @property
    def name(self) -> str:
        return "soak" if self.soak else "short"

    def pick(self, short: T, soak: T) -> T:
        return soak if self.soak else short

    def rng(self, salt: str) -> random.Random:
        """A seeded random source per test (``salt``), the same on every run with this seed."""
        return random.Random(f"{self.seed}:{salt}:{self.name}")


def soak_seconds() -> float:
    text = os.environ.get("MODEL_HEALTH_SOAK_SECONDS", "")
    try:
        seconds = float(text) if text else DEFAULT_SOAK_SECONDS
    except ValueError:
        raise pytest.UsageError(f"MODEL_HEALTH_SOAK_SECONDS must be a number of seconds, not {text!r}") from None
    if seconds <= 0:
        raise pytest.UsageError("MODEL_HEALTH_SOAK_SECONDS must be above 0")
    return seconds


def seed() -> int:
    text = os.environ.get("MODEL_HEALTH_RELIABILITY_SEED", "")
    try:
        return int(text) if text else DEFAULT_SEED
    except ValueError:
        raise pytest.UsageError(f"MODEL_HEALTH_RELIABILITY_SEED must be an integer, not {text!r}") from None


@pytest.fixture(params=[pytest.param(False, id="short"), pytest.param(True, id="soak", marks=pytest.mark.soak)])
def scale(request: pytest.FixtureRequest) -> Scale:
    return Scale(soak=request.param, seconds=soak_seconds() if request.param else 0.0, seed=seed())


class Figures:
    """One test's figures line: ``record(sent=…, counted=…, faults=…, lost=…, duplicated=…, …)``."""

    def __init__(self, node: pytest.Item, seed_value: int) -> None:
        self._node = node
        self._seed = seed_value

    def record(self, part: str = "", **values: Any) -> None:
        """Record (or replace) this test's line; ``part`` names one of several lines of a test."""
        test = self._node.name
        line = {**values, "seed": str(self._seed)}
        if part:
            line["part"] = part
            test = f"{test} {part}"
        # Recorded again, the later line wins (the report keeps the last one per test and part).
        self._node.user_properties.append(figures_property(test, line))
        shown = ", ".join(f"{k}={v}" for k, v in line.items())
        print(f"figures {test}: {shown}", file=sys.stderr)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node, seed())


@pytest.fixture(scope="session")
def fraud_profile(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The reference profile of model fraud v7, for the records ``harness.records`` makes."""
    profile = build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    return save_profile(profile, tmp_path_factory.mktemp("profiles") / "fraud-7.parquet")


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    """Callbacks run at teardown, last first, even when the test failed."""
    callbacks: list[Callable[[], None]] = []
    yield callbacks
    for callback in reversed(callbacks):
        try:
            callback()
        except Exception as error:  # noqa: BLE001 - every callback runs
            print(f"cleanup failed: {error}", file=sys.stderr)
