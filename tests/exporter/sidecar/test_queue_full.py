"""Backpressure: with Kafka stalled the buffer fills, ingest answers 503, memory stays bounded.

These run with ``queue.acknowledge: queued`` (answered once queued), where the buffer is what
absorbs a stall; ``test_delivery.py`` covers the default, answered once Kafka has the records.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from exporter.kafka import ProduceFailed
from tests.exporter.decoders.messages import native_record, ndjson
from tests.exporter.sidecar.helpers import post, running, sample, sidecar_config, wait_for
from tests.support.fake_kafka import FakeLog, FakeProducer

NDJSON = {"Content-Type": "application/x-ndjson"}


class BlockingProducer(FakeProducer):
    """Like a client whose local buffer is full and whose broker is away: send() blocks."""

    def __init__(self, log: FakeLog) -> None:
        super().__init__(log)
        self.open = threading.Event()

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        self.open.wait(timeout=60)
        super().send(topic, value, key, headers, partition)


def test_a_stalled_producer_fills_the_queue_then_503_then_recovery():
    log = FakeLog()
    producer = BlockingProducer(log)
    config = sidecar_config(
        queue={"max_records": 100, "acknowledge": "queued"}, kafka={"batch_max_records": 20, "batch_max_seconds": 0.05}
    )
    with running(config, producer=lambda _: producer) as (sidecar, _):
        accepted = refused = 0
        for i in range(30):
            body = ndjson([native_record(i * 10 + j) for j in range(10)])
            reply = post(sidecar, "/v1/predictions", body, NDJSON)
            if reply.status_code == 200:
                accepted += 10
            else:
                assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
                assert reply.json()["reason"] == "queue_full"
                refused += 1
            assert sidecar.queue.held <= config.queue.max_records
        assert accepted == 100 and refused == 20
        assert sample(sidecar, "model_health_ingest_queue_records") == 100
        assert sample(sidecar, "model_health_ingest_requests_rejected_total", reason="queue_full") == 20
        # Refused records are not served traffic yet (their clients retry): counted apart.
        assert sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") == 100
        assert sidecar.ready()[0] is True  # the model's pod stays in service

        producer.open.set()
        wait_for(lambda: sample(sidecar, "model_health_ingest_queue_records") == 0, what="the queue to drain")
        assert post(sidecar, "/v1/predictions", ndjson([native_record(999)]), NDJSON).status_code == 200
    rows = sum(len(m.value.splitlines()) for m in log.messages("model-predictions"))
    assert rows == 101
    assert max(len(m.value.splitlines()) for m in log.messages("model-predictions")) <= 20


class FailingProducer(FakeProducer):
    def flush(self, timeout_s: float = 30.0) -> None:
        raise ProduceFailed("1 message(s) not delivered: test")


def test_a_batch_kafka_refuses_is_dropped_and_counted():
    config = sidecar_config(kafka={"batch_max_seconds": 0.05}, queue={"acknowledge": "queued"})
    with running(config, producer=lambda _: FailingProducer(FakeLog())) as (sidecar, _):
        assert post(sidecar, "/v1/predictions", ndjson([native_record(i) for i in range(5)]), NDJSON).status_code == 200
        wait_for(
            lambda: (
                sample(
                    sidecar, "model_health_records_rejected_total", topic="model-predictions", reason="produce_failed"
                )
                == 5
            ),
            what="the failed batch to be counted",
        )
        assert sample(sidecar, "model_health_ingest_queue_records") == 0
