"""KServe and Seldon Core 2 traffic, written as they write it, counted against the real broker.

The scenario of the producers issue: a model ``hidden`` configured with ``version: "1"`` and
nothing else, KServe's agent logging it through a KafkaSink exactly as the controller sets the
agent up (``--endpoint default``, no version anywhere, V1 bodies, unkeyed records) — every
inference must be counted, none as an error, and drift found on exactly the drifted features.
The same with ``logger.mode: request``, and for Seldon Core 2 with and without the
schema-registry framing. Messages come from the conformance corpus
(:mod:`tests.exporter.decoders.corpus`); the aggregator is single mode's own code, in process,
over tansu.

``INFERENCES`` is kept small for the suite's time; ``benchmarks/producers.py`` runs the issue's
full 25,000 inferences against the same broker and reports the counts (docs/producers.md).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from exporter.aggregator.inputs import load_models
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.kafka import open_consumer, open_producer
from exporter.pipeline.decode import BatchDecoder
from exporter.pipeline.snapshot import Snapshot
from tests.exporter.decoders.corpus import kserve, seldon, traffic
from tests.support.broker import broker, group_settings, make_topic, producer_settings  # noqa: F401

INFERENCES = 2_000
KEY = (traffic.MODEL, "1")
# Event times within the last day, so the 1-day window holds them when evaluated.
BASE_TIME = time.time() - 6 * 3600


@pytest.fixture(scope="module")
def hidden_profile(tmp_path_factory) -> Path:
    return traffic.save_reference_profile(tmp_path_factory.mktemp("profiles"))


def aggregator(broker, profile: Path, state: Path, *, kafka: dict, model: dict | None = None) -> Aggregator:  # noqa: F811
    topics = [kafka["labels_topic"], kafka["deadletter_topic"]]
    broker.create_topics(topics, partitions=1, exist_ok=True)
    config = AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
            **kafka,
        },
        # The configuration: a name, a version, a profile — nothing about KServe.
        models=[{"name": traffic.MODEL, "version": "1", "reference": str(profile), **(model or {})}],
        windows=[{"name": "1d", "bucket_seconds": 3600, "buckets": 24}],
        allowed_lateness_seconds=100_000,
        state={"dir": str(state)},
    )
    consumer = open_consumer(group_settings(broker))
    built = Aggregator(
        config,
        load_models(config),
        consumer,
        open_producer(producer_settings(broker)),
        BatchDecoder(config.kafka.labels_topic, config.kafka.format),
    )
    built.subscribe()
    return built


def count_all(agg: Aggregator, expected: int, timeout: float = 120.0) -> Snapshot:
    deadline = time.monotonic() + timeout
    try:
        while agg.counters.predictions[KEY] < expected and time.monotonic() < deadline:
            agg.poll_once()
        for _ in range(3):  # and nothing more comes
            agg.poll_once()
        return agg.evaluate()
    finally:
        agg.consumer.close()
        agg.producer.close()


def assert_exact(snapshot: Snapshot, expected: int) -> None:
    pipeline = snapshot.pipeline
    assert pipeline.predictions == {KEY: expected}
    assert pipeline.prediction_errors.get(KEY, 0) == 0
    assert pipeline.rejected == {}
    [model] = snapshot.models
    window = model.windows["1d"]
    assert window.samples == expected
    assert {name for name, drift in window.features.items() if drift.drift} == traffic.DRIFTED


@pytest.mark.parametrize("log_mode", ["all", "request"])
def test_kserve_through_a_kafkasink_counts_every_inference(broker, make_topic, hidden_profile, tmp_path, log_mode):  # noqa: F811
    topic = make_topic(3)
    agent = kserve.Agent(service=traffic.MODEL, namespace="ml", endpoint="default", log_mode=log_mode)
    events = traffic.kserve_events(agent, INFERENCES, BASE_TIME)
    assert len(events) == INFERENCES * (2 if log_mode == "all" else 1)
    producer = open_producer(producer_settings(broker))
    for event in events:
        producer.send(topic, event.value, key=event.key, headers=event.headers)  # unkeyed, like KafkaSink
    producer.flush()
    producer.close()
    model = {"logger_mode": "request"} if log_mode == "request" else {}
    kafka = {"predictions_topic": topic, "labels_topic": topic + "-labels", "deadletter_topic": topic + "-dead"}
    snapshot = count_all(aggregator(broker, hidden_profile, tmp_path, kafka=kafka, model=model), INFERENCES)
    assert_exact(snapshot, INFERENCES)
    assert snapshot.pipeline.consumed == {(topic, "kserve"): len(events)}


@pytest.mark.parametrize("framed", [False, True], ids=["plain", "schema-registry"])
def test_seldon_core_2_counts_every_inference(broker, hidden_profile, tmp_path, framed):  # noqa: F811
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    gateway = seldon.Gateway(namespace=namespace, schema_ids=(41, 42) if framed else None)
    messages = traffic.seldon_messages(gateway, INFERENCES, partitions=2)
    topics = sorted({m.topic for m in messages})
    broker.create_topics(topics, partitions=2)
    producer = open_producer(producer_settings(broker))
    for message in messages:
        producer.send(
            message.topic, message.value, key=message.key, headers=message.headers, partition=message.partition
        )
    producer.flush()
    producer.close()
    kafka = {
        "format": "seldon",
        "labels_topic": f"{namespace}-labels",
        "deadletter_topic": f"{namespace}-dead",
    }
    snapshot = count_all(
        aggregator(broker, hidden_profile, tmp_path, kafka=kafka, model={"namespace": namespace}), INFERENCES
    )
    assert_exact(snapshot, INFERENCES)
    assert sum(snapshot.pipeline.consumed.values()) == len(messages)
