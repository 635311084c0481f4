"""Fixtures for the GPU tests: the recorded H200 capture, the fake NVML, a hand-moved clock."""

from __future__ import annotations

import pytest

from exporter.gpu.fake import Capture, FakeNvml
from tests.support.gpu import FakeClock, capture_dir


@pytest.fixture(scope="session")
def capture() -> Capture:
    return Capture.load(capture_dir())


@pytest.fixture
def fake(capture: Capture) -> FakeNvml:
    return FakeNvml(capture)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
