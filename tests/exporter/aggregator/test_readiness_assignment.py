"""/readyz notices a single-mode aggregator that the group left without partitions."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request

from detectors.profile import build_profile
from exporter.aggregator.readiness import AssignmentWatch
from exporter.aggregator.service import serve
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import synthetic_table
from exporter.kafka.embedded import free_port
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.exporter.aggregator.test_broker import SHAPE
from tests.support.broker import broker, make_topic, unique_group  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_empty_assignment_is_tolerated_for_the_grace_then_reported_once(caplog):
    clock = Clock()
    watch = AssignmentWatch(grace_s=30.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="exporter.aggregator.readiness"):
        assert watch.check(0) is None
        clock.now += 29.0
        assert watch.check(0) is None  # a rebalance takes this long at most
        clock.now += 2.0
        assert watch.check(0) == "no partitions assigned for 31 s"
        clock.now += 10.0
        assert watch.check(0) == "no partitions assigned for 41 s"
        assert watch.check(3) is None
        clock.now += 5.0
        assert watch.check(0) is None  # the grace starts over
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "held no partitions" in m]) == 1
    assert len([m for m in messages if "assigned again (3)" in m]) == 1


def readyz(port: int) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None


def test_of_two_single_mode_aggregators_in_one_group_the_one_without_partitions_is_not_ready(
    broker, make_topic, tmp_path
):  # noqa: F811
    # Two replicas left in single mode (a misconfiguration the chart prevents): the range
    # assignor gives one member partition 0 of both one-partition topics, the other nothing.
    profile = tmp_path / "fraud-7.parquet"
    save_profile(
        build_profile(
            synthetic_table(2_000, seed=1, **SHAPE),
            model="fraud",
            model_version="7",
            created_at=1.7e9,
            prediction="prediction",
        ),
        profile,
    )
    kafka = {
        "bootstrap_servers": broker.bootstrap_servers,
        "group_id": unique_group("assign"),
        "predictions_topic": make_topic(1),
        "labels_topic": make_topic(1),
        "session_timeout_ms": 2000,
        "heartbeat_interval_ms": 500,
    }
    stop = threading.Event()
    threads, ports = [], []
    for replica in range(2):
        port = free_port()
        config = AggregatorConfig(
            kafka=kafka,
            models=[{"name": "fraud", "version": "7", "reference": str(profile)}],
            state={"dir": str(tmp_path / f"state-{replica}")},
            http={"host": "127.0.0.1", "port": port},
        )
        thread = threading.Thread(
            target=serve,
            args=(config, BatchDecoder(config.kafka.labels_topic), stop),
            kwargs={"assignment": AssignmentWatch(grace_s=3.0)},
            daemon=True,
        )
        thread.start()
        threads.append(thread)
        ports.append(port)
    try:
        deadline = time.monotonic() + 90
        answers: list[tuple[int, str] | None] = []
        while time.monotonic() < deadline:
            answers = [readyz(port) for port in ports]
            if sorted(a[0] for a in answers if a) == [200, 503]:
                break
            time.sleep(0.25)
        assert sorted(a[0] for a in answers if a) == [200, 503], answers
        texts = sorted(a[1] for a in answers if a)
        assert texts[0].startswith("consuming") and texts[1].startswith("no partitions assigned for"), texts
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
