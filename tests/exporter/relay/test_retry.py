"""Backoff with full jitter, Retry-After, and which answers are worth retrying."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from exporter.relay.retry import RetryPolicy, classify, parse_retry_after

POLICY = RetryPolicy(max_attempts=8, base_seconds=1.0, max_seconds=60.0, jitter="full", max_retry_after_seconds=120.0)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (301, "permanent"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (409, "permanent"),
        (422, "permanent"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_backoff_cap_doubles_up_to_the_maximum() -> None:
    assert [POLICY.backoff_cap(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert POLICY.backoff_cap(10_000) == 60


def test_full_jitter_spreads_over_zero_to_cap() -> None:
    rng = random.Random(1)
    delays = [POLICY.delay(4, rng) for _ in range(2000)]
    assert all(0 <= d <= 8 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 7.5  # the whole range, not a band near the cap


def test_no_jitter_is_the_cap() -> None:
    policy = RetryPolicy(8, 0.5, 10.0, "none", 120.0)
    assert [policy.delay(n, random.Random()) for n in (1, 2, 3, 6)] == [0.5, 1.0, 2.0, 10.0]


def test_retry_after_is_a_floor_with_a_ceiling() -> None:
    rng = random.Random(2)
    assert POLICY.delay(1, rng, retry_after=30.0) == 30.0
    assert POLICY.delay(1, rng, retry_after=10_000.0) == 120.0
    assert POLICY.delay(7, random.Random(3), retry_after=0.0) <= 60


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", 0.0) == 120.0
    assert parse_retry_after(" 5 ", 0.0) == 5.0
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after("-3", 0.0) is None
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now) == 0.0
