"""``queue.acknowledge: delivered`` (the default): a 2xx means Kafka has the records.

The producer here keeps what it is sent until ``flush`` — as a Kafka client's buffer does
until the broker acknowledges — so a record found in the log when the answer arrives was
delivered before it was answered for.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from exporter.kafka import BrokerUnavailable, ProduceFailed
from tests.exporter.decoders.messages import REQUEST_TYPE, RESPONSE_TYPE, kserve_headers, native_record, ndjson
from tests.exporter.sidecar.helpers import post, running, sample, sidecar_config, wait_for
from tests.exporter.sidecar.test_ingest import forwarded_rows
from tests.support.fake_kafka import FakeLog, FakeProducer

NDJSON = {"Content-Type": "application/x-ndjson"}


class AckingProducer(FakeProducer):
    """Sends reach the log only at ``flush``, which waits while ``stalled`` is set."""

    def __init__(self, log: FakeLog) -> None:
        super().__init__(log)
        self._buffer: list[tuple[str, bytes, bytes | None, Sequence[tuple[str, bytes]], int]] = []
        self.flowing = threading.Event()
        self.flowing.set()
        self.flushing = threading.Event()

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        self._buffer.append((topic, value, key, headers, partition or 0))

    def flush(self, timeout_s: float = 30.0) -> None:
        self.flushing.set()
        self.flowing.wait(timeout=60)
        for message in self._buffer:
            self.log.append(*message)
        self._buffer.clear()
        self.flushes += 1


def rows_of(log: FakeLog) -> list[str]:
    return [row["request_id"] for row in forwarded_rows(log)]


def test_a_2xx_means_the_records_are_already_in_kafka():
    log = FakeLog()
    producer = AckingProducer(log)
    # batch_max_seconds is long: a waiting request must not wait for it.
    config = sidecar_config(kafka={"batch_max_seconds": 30.0})
    with running(config, producer=lambda _: producer) as (sidecar, _):
        for n in range(5):
            reply = post(sidecar, "/v1/predictions", ndjson([native_record(n * 10 + i) for i in range(10)]), NDJSON)
            assert reply.status_code == 200 and reply.json()["records"] == 10
            assert len(rows_of(log)) == (n + 1) * 10  # in the log before the answer came
        assert sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") == 50
        assert sample(sidecar, "model_health_ingest_queue_records") == 0


def test_concurrent_requests_share_flushes():
    log = FakeLog()
    producer = AckingProducer(log)
    config = sidecar_config(kafka={"batch_max_seconds": 30.0, "batch_max_records": 1_000})
    with running(config, producer=lambda _: producer) as (sidecar, _):
        bodies = [ndjson([native_record(n * 5 + i) for i in range(5)]) for n in range(40)]
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda body: post(sidecar, "/v1/predictions", body, NDJSON), bodies))
        assert [r.status_code for r in replies] == [200] * 40
        assert sorted(rows_of(log)) == sorted(f"r-{n}" for n in range(200))
        assert producer.flushes <= 40  # one per request at most; usually far fewer


def test_records_kafka_has_not_taken_in_time_are_withdrawn_and_never_sent():
    log = FakeLog()
    producer = AckingProducer(log)
    config = sidecar_config(queue={"acknowledge_timeout_seconds": 0.5})
    with running(config, producer=lambda _: producer) as (sidecar, _):
        producer.flowing.clear()  # the broker stops acknowledging
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, sidecar, "/v1/predictions", ndjson([native_record(i) for i in range(3)]), NDJSON)
            wait_for(producer.flushing.is_set, what="the first batch to be on the wire")
            # Queued behind a flush that hangs: not sent by the timeout, so taken back.
            late = post(sidecar, "/v1/predictions", ndjson([native_record(100 + i) for i in range(4)]), NDJSON)
            assert late.status_code == 503 and late.json()["reason"] == "delivery_timeout"
            assert late.headers["Retry-After"] == "1"
            producer.flowing.set()
            # Already on the wire when its time ran out: it waits for the outcome instead.
            assert first.result().status_code == 200
        again = post(sidecar, "/v1/predictions", ndjson([native_record(100 + i) for i in range(4)]), NDJSON)
        assert again.status_code == 200
        # The retry is the only copy: the withdrawn records were never written.
        assert sorted(rows_of(log)) == ["r-0", "r-1", "r-100", "r-101", "r-102", "r-103", "r-2"]
        assert sample(sidecar, "model_health_ingest_requests_rejected_total", reason="delivery_timeout") == 1
        assert (
            sample(sidecar, "model_health_records_rejected_total", topic="model-predictions", reason="delivery_timeout")
            == 4
        )
        assert sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") == 7
        assert sample(sidecar, "model_health_ingest_queue_records") == 0


class RefusingProducer(AckingProducer):
    def flush(self, timeout_s: float = 30.0) -> None:
        self._buffer.clear()
        raise ProduceFailed("1 message(s) not delivered: test")


def test_a_batch_kafka_refuses_is_answered_503_so_the_client_retries():
    config = sidecar_config()
    with running(config, producer=lambda _: RefusingProducer(FakeLog())) as (sidecar, _):
        reply = post(sidecar, "/v1/predictions", ndjson([native_record(i) for i in range(5)]), NDJSON)
        assert reply.status_code == 503 and reply.json()["reason"] == "produce_failed"
        assert (
            sample(sidecar, "model_health_records_rejected_total", topic="model-predictions", reason="produce_failed")
            == 5
        )
        assert sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") is None


def test_without_kafka_requests_are_refused_at_once():
    def unreachable(_config: object) -> FakeProducer:
        raise BrokerUnavailable("no broker at 127.0.0.1:1")

    with running(sidecar_config(), producer=unreachable) as (sidecar, _):
        reply = post(sidecar, "/v1/predictions", ndjson([native_record(1)]), NDJSON)
        assert reply.status_code == 503 and reply.json()["reason"] == "kafka_unavailable"
        assert sidecar.queue.held == 0
        assert sidecar.ready()[0] is True  # the model's pod stays in service


def test_the_kserve_response_completing_a_pair_is_answered_once_the_pair_is_in_kafka():
    log = FakeLog()
    producer = AckingProducer(log)
    config = sidecar_config(kafka={"batch_max_seconds": 30.0})
    body_in = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
    body_out = b'{"predictions": [1]}'
    with running(config, producer=lambda _: producer) as (sidecar, _):
        for n in range(3):
            event = f"ev-{n}"
            request = post(sidecar, "/", body_in, kserve_headers(event, REQUEST_TYPE))
            assert request.status_code == 200 and request.json()["records"] == 0  # waits for its partner
            response = post(sidecar, "/", body_out, kserve_headers(event, RESPONSE_TYPE))
            assert response.status_code == 200 and response.json()["records"] == 1
            assert len(forwarded_rows(log)) == n + 1  # in the log before the answer came
