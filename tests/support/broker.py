"""Pytest fixtures for a real Kafka-protocol broker (tansu) on loopback.

Usage — tests/conftest.py is not ours to edit, so a test module imports the fixtures it
wants, and pytest picks up fixtures imported into a module::

    from tests.support.broker import broker, make_topic  # noqa: F401

    def test_something(broker, make_topic):
        topic = make_topic(partitions=3)
        settings = group_settings(broker, "my-group")
        ...

``broker`` is session-scoped: one tansu per test process (per xdist worker), in memory,
stopped at the end. ``make_topic`` creates a uniquely named topic per call, so tests that
share the broker never see each other's records. ``group_settings`` gives the consumer
timings tansu needs for quick group joins, and ``poll_until`` polls with a deadline instead
of sleeping.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from exporter.kafka import Consumer, ConsumerSettings, Message, ProducerSettings
from exporter.kafka.embedded import EmbeddedBroker

# tansu holds a join for half the session timeout: 2 s keeps every join near one second.
SESSION_TIMEOUT_MS = 2_000
HEARTBEAT_INTERVAL_MS = 500


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def make_topic(broker: EmbeddedBroker, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``make_topic(partitions=3)`` → the name of a new, empty topic on ``broker``."""
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]

    def make(partitions: int = 3) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        broker.create_topics([name], partitions=partitions)
        return name

    return make


def unique_group(prefix: str = "group") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def group_settings(broker: EmbeddedBroker, group_id: str | None = None, **overrides: Any) -> ConsumerSettings:
    """Consumer settings for ``broker`` with tansu-friendly group timings and a fresh group."""
    settings = ConsumerSettings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=group_id or unique_group(),
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        bootstrap_timeout_s=5.0,
    )
    return replace(settings, **overrides)


def producer_settings(broker: EmbeddedBroker, **overrides: Any) -> ProducerSettings:
    settings = ProducerSettings(bootstrap_servers=broker.bootstrap_servers, linger_ms=5, bootstrap_timeout_s=5.0)
    return replace(settings, **overrides)


def poll_until(
    consumer: Consumer,
    done: Callable[[list[Message]], bool],
    timeout_s: float = 20.0,
    poll_s: float = 0.5,
) -> list[Message]:
    """Poll, collecting messages, until ``done(collected)`` or the deadline; never sleeps blindly."""
    collected: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while not done(collected):
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s with {len(collected)} message(s)")
        collected.extend(consumer.poll(poll_s, max_records=1_000))
    return collected


def poll_count(consumer: Consumer, count: int, timeout_s: float = 20.0) -> list[Message]:
    return poll_until(consumer, lambda got: len(got) >= count, timeout_s)
