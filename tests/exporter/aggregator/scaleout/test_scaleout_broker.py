"""Scale-out aggregator processes against the real broker (tansu): several replicas in one
group over an unkeyed four-partition topic export what one process exports, to the record,
with and without ``kill -9`` mid-stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from exporter.kafka import open_producer
from exporter.kafka.embedded import free_port
from tests.exporter.aggregator.scaleout.harness import (
    assert_same_metrics,
    combine,
    exposition,
    make_config,
    parse_exposition,
    single_run,
)
from tests.exporter.aggregator.scaleout.traffic import WINDOWS, make_traffic, models_config
from tests.support.broker import broker, make_topic, producer_settings, unique_group  # noqa: F401

SCRIPT = Path(sys.executable).with_name("model-health")
ROWS = 400
# Event times half an hour back: inside the 1h window for as long as a test runs.
BASE_TIME = time.time() - 1800


@pytest.fixture
def deployment(broker, make_topic, tmp_path, profiles):  # noqa: F811
    topics = {
        "predictions": make_topic(4),
        "labels": make_topic(2),
        "summaries": make_topic(2),
        "deadletter": make_topic(1),
    }
    models = [{**m, "thresholds": {"min_samples": 100}} for m in models_config(profiles)]
    config = {
        "kafka": {
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": unique_group("agg"),
            "predictions_topic": topics["predictions"],
            "labels_topic": topics["labels"],
            "summaries_topic": topics["summaries"],
            "deadletter_topic": topics["deadletter"],
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
            # A killed replica never leaves its groups; a rebalance waits this long for it.
            "max_poll_interval_ms": 2500,
            "partial_flush_seconds": 0.5,
        },
        "models": models,
        "windows": WINDOWS,
        "allowed_lateness_seconds": 100_000,
        "evaluation": {"interval_seconds": 0.5},
        "state": {"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 3.0},
        "http": {"host": "127.0.0.1", "port": 9877},
    }
    path = tmp_path / "aggregator.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    producer = open_producer(producer_settings(broker))
    processes: list[subprocess.Popen] = []
    yield {
        "config": path,
        "dir": tmp_path,
        "topics": topics,
        "producer": producer,
        "processes": processes,
        "profiles": profiles,
    }
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    producer.close()


class Replica:
    """One ``model-health aggregator`` process; restartable on the same port and state dir."""

    def __init__(
        self,
        deployment,
        name: str,
        mode: str = "scale_out",
        group: str | None = None,
        client: str = "kafka-python",
        join_shards: int = 0,
    ) -> None:
        self.deployment = deployment
        self.name = name
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MODEL_HEALTH_KAFKA__MODE": mode,
            "MODEL_HEALTH_KAFKA__CLIENT": client,
            "MODEL_HEALTH_HTTP__PORT": str(self.port),
            "MODEL_HEALTH_STATE__DIR": str(deployment["dir"] / f"state-{name}"),
            "MODEL_HEALTH_KAFKA__JOIN_SHARDS": str(join_shards),
        }
        if group is not None:
            self.env["MODEL_HEALTH_KAFKA__GROUP_ID"] = group
        self.process: subprocess.Popen | None = None

    def start(self) -> Replica:
        log = open(self.deployment["dir"] / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(
            [str(SCRIPT), "aggregator", "--config", str(self.deployment["config"])],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.deployment["processes"].append(self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)  # no chance to publish, commit or checkpoint
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def scrape(self) -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                return parse_exposition(response.read().decode())
        except OSError:
            return None

    def raw(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
            return response.read().decode()


def produce(deployment, traffic_part: list[bytes], topic: str, partitions: int, offset: int = 0) -> None:
    """Unkeyed: no key, messages spread round-robin over the partitions."""
    for i, value in enumerate(traffic_part):
        deployment["producer"].send(deployment["topics"][topic], value, partition=(offset + i) % partitions)
    deployment["producer"].flush()


def scraped(replicas: list[Replica]) -> dict[str, float] | None:
    scrapes = [r.scrape() for r in replicas]
    if any(s is None for s in scrapes):
        return None
    return combine(scrapes)  # type: ignore[arg-type]


def owners(replicas: list[Replica]) -> list[set[str]]:
    """The models each replica exports."""
    return [
        {k.split('model="')[1].split('"')[0] for k in (r.scrape() or {}) if k.startswith("model_health_model_info{")}
        for r in replicas
    ]


def settle(replicas: list[Replica], expected: dict[str, float], timeout: float = 90.0) -> dict[str, float]:
    """Poll the replicas' /metrics until the group is settled — every replica owns models
    (two summaries partitions, at most two replicas) — and they add up to ``expected``."""
    deadline = time.monotonic() + timeout
    got: dict[str, float] | None = None
    while time.monotonic() < deadline:
        got = scraped(replicas)
        if got is not None and all(owners(replicas)):
            try:
                assert_same_metrics(expected, got)
                return got
            except AssertionError:
                pass
        time.sleep(0.5)
    assert got is not None, "no replica answered /metrics"
    assert all(owners(replicas)), f"the group never settled: owners {owners(replicas)}"
    assert_same_metrics(expected, got)
    return got


def in_process_expected(deployment, traffic, tmp_path) -> dict[str, float]:
    """What one single-mode aggregator makes of the same traffic (in memory, evaluated now)."""
    topics = deployment["topics"]
    config = make_config(
        deployment["profiles"],
        tmp_path / "single",
        predictions_topic=topics["predictions"],
        labels_topic=topics["labels"],
    )
    aggregator = single_run(config, traffic, time.time())
    return exposition(aggregator.snapshot(), aggregator.latency())


@pytest.mark.parametrize("join_shards", [0, 3])
def test_two_replicas_export_what_one_process_exports(deployment, join_shards):
    """With join shards, stage 2's own producer carries the shards' reports through the broker."""
    traffic = make_traffic(ROWS, BASE_TIME)
    produce(deployment, traffic.predictions, "predictions", 4)
    produce(deployment, traffic.labels, "labels", 2)
    single = Replica(deployment, "single", mode="single", group=unique_group("single")).start()
    replicas = [Replica(deployment, f"r{i}", join_shards=join_shards).start() for i in range(2)]
    try:

        def single_done():
            got = single.scrape() or {}
            total = sum(v for k, v in got.items() if k.startswith("model_health_predictions_total{"))
            return got if total == sum(traffic.rows.values()) else None

        deadline = time.monotonic() + 60
        while (expected := single_done()) is None:
            assert time.monotonic() < deadline, "the single-mode process never counted every record"
            time.sleep(0.5)
        got = settle(replicas, expected)
        assert sum(v for k, v in got.items() if k.startswith("model_health_labels_joined_total{")) == sum(
            traffic.labelled.values()
        )
        # Each model has exactly one owner, and both replicas own something.
        owned = owners(replicas)
        assert all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {"fraud", "churn"}
        assert "model_health_summaries_merged_total" in replicas[0].raw()
        for replica in replicas:
            with urllib.request.urlopen(f"http://127.0.0.1:{replica.port}/readyz", timeout=2) as response:
                assert response.status == 200
    finally:
        for replica in [single, *replicas]:
            replica.stop()
    # SIGTERM: each replica publishes what it holds, checkpoints, leaves its groups and exits 0.
    assert [r.process.returncode for r in replicas] == [0, 0]


def merged_predictions(replicas: list[Replica]) -> float:
    return sum(v for k, v in (scraped(replicas) or {}).items() if k.startswith("model_health_predictions_total{"))


def wait_for_progress(replicas: list[Replica], beyond: float, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while (merged := merged_predictions(replicas)) <= beyond:
        assert time.monotonic() < deadline, f"the replicas never merged more than {beyond:g} predictions"
        time.sleep(0.3)
    return merged


@pytest.mark.slow
@pytest.mark.parametrize(
    ("count", "client", "join_shards"),
    [(1, "kafka-python", 0), (2, "kafka-python", 0), (2, "confluent", 0), (2, "kafka-python", 3)],
    ids=["one-replica", "two-replicas", "two-replicas-confluent", "two-replicas-join-shards"],
)
def test_kill_9_mid_stream_counts_every_record_once(deployment, tmp_path, count, client, join_shards):
    traffic = make_traffic(ROWS, BASE_TIME, seed=5)
    expected = in_process_expected(deployment, traffic, tmp_path)
    replicas = [Replica(deployment, f"r{i}", client=client, join_shards=join_shards).start() for i in range(count)]
    victim = replicas[0]
    chunks = 3
    parts = [
        (
            traffic.predictions[c * len(traffic.predictions) // chunks : (c + 1) * len(traffic.predictions) // chunks],
            traffic.labels[c * len(traffic.labels) // chunks : (c + 1) * len(traffic.labels) // chunks],
        )
        for c in range(chunks)
    ]
    sent = {"predictions": 0, "labels": 0}

    def send(chunk: int) -> None:
        for topic, messages, partitions in (("predictions", parts[chunk][0], 4), ("labels", parts[chunk][1], 2)):
            produce(deployment, messages, topic, partitions, offset=sent[topic])
            sent[topic] += len(messages)

    try:
        send(0)
        merged = wait_for_progress(replicas, 0)
        for chunk in range(1, chunks):
            send(chunk)
            time.sleep(0.4)  # mid-stream: the chunk is being folded, published and merged
            victim.kill()
            # As a pod restart would: the dead member's session (2 s) expires before it comes back.
            time.sleep(2.1)
            victim.start()
            merged = wait_for_progress(replicas, merged if chunk < chunks - 1 else 0)
        settle(replicas, expected)
        time.sleep(2)  # nothing more arrives: no record was counted twice
        assert_same_metrics(expected, scraped(replicas))  # type: ignore[arg-type]
    finally:
        for replica in replicas:
            replica.stop()


def test_two_replicas_pair_kserve_halves_spread_over_an_unkeyed_topic(deployment, tmp_path):
    """KServe request and response CloudEvents (KafkaSink headers) round-robin over four
    partitions: their halves land on partitions different replicas hold, and are paired by
    the model's owner in stage 2 — the replicas export what one process exports."""
    from exporter.aggregator.inputs import load_models
    from exporter.aggregator.single import Aggregator
    from exporter.pipeline.decode import BatchDecoder
    from tests.exporter.aggregator.scaleout.kserve_traffic import make_kserve_traffic
    from tests.exporter.aggregator.scaleout.test_kserve_pairs import Topics
    from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

    traffic = make_kserve_traffic(60, BASE_TIME, tag="broker", extras=False)
    topics = deployment["topics"]
    for topic, items, partitions in (
        ("predictions", traffic.messages, 4),
        ("labels", [(v, ()) for v in traffic.labels], 2),
    ):
        for i, (value, headers) in enumerate(items):
            deployment["producer"].send(topics[topic], value, headers=headers, partition=i % partitions)
    deployment["producer"].flush()
    config = make_config(
        deployment["profiles"],
        tmp_path / "single",
        predictions_topic=topics["predictions"],
        labels_topic=topics["labels"],
    )
    log = FakeLog()
    fake = Topics(log)
    fake.counts = {topics["predictions"]: 4, topics["labels"]: 2}
    fake.sent = {topics["predictions"]: 0, topics["labels"]: 0}
    fake.send(
        [(topics["predictions"], v, h) for v, h in traffic.messages]
        + [(topics["labels"], v, ()) for v in traffic.labels]
    )
    now = time.time()
    single = Aggregator(
        config,
        load_models(config),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(config.kafka.labels_topic),
        clock=lambda: now,
    )
    single.subscribe()
    while single.poll_once():
        pass
    single.evaluate()
    expected = exposition(single.snapshot(), single.latency())
    assert sum(v for k, v in expected.items() if k.startswith("model_health_predictions_total{")) == traffic.pairs
    replicas = [Replica(deployment, f"r{i}").start() for i in range(2)]
    try:
        got = settle(replicas, expected)
        assert sum(v for k, v in got.items() if k.startswith("model_health_labels_joined_total{")) == len(
            traffic.labels
        )
    finally:
        for replica in replicas:
            replica.stop()


@pytest.mark.slow
def test_a_replacement_replica_restores_the_shared_snapshot_instead_of_replaying(deployment, tmp_path):
    """Owners publish their state into their summaries partitions; one dies for good, and a new
    pod — no local checkpoint — takes its partitions over from the published state."""
    traffic = make_traffic(ROWS, BASE_TIME, seed=7)
    expected = in_process_expected(deployment, traffic, tmp_path)
    half = len(traffic.predictions) // 2, len(traffic.labels) // 2
    replicas = [Replica(deployment, f"r{i}") for i in range(2)]
    for replica in replicas:
        replica.env["MODEL_HEALTH_KAFKA__SNAPSHOT_INTERVAL_SECONDS"] = "0"  # a snapshot at every checkpoint
        replica.start()
    try:
        produce(deployment, traffic.predictions[: half[0]], "predictions", 4)
        produce(deployment, traffic.labels[: half[1]], "labels", 2)
        wait_for_progress(replicas, 0)
        time.sleep(7)  # two checkpoint intervals: each owner has published a snapshot and its pointer
        replicas[0].kill()
        replacement = Replica(deployment, "r2")  # another pod: a fresh state directory
        replacement.env["MODEL_HEALTH_KAFKA__SNAPSHOT_INTERVAL_SECONDS"] = "0"
        replicas = [replicas[1], replacement.start()]
        produce(deployment, traffic.predictions[half[0] :], "predictions", 4, offset=half[0])
        produce(deployment, traffic.labels[half[1] :], "labels", 2, offset=half[1])
        settle(replicas, expected)
        assert_same_metrics(expected, scraped(replicas))  # type: ignore[arg-type]
        logs = "".join((deployment["dir"] / f"{r.name}.log").read_text() for r in replicas)
        assert "restoring the shared snapshot covering offset" in logs
        assert "no usable shared snapshot" not in logs
    finally:
        for replica in replicas:
            replica.stop()
