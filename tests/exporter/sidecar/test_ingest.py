"""HTTP ingest over real HTTP: KServe logger CloudEvents and native JSON in, decodable records out.

The CloudEvents are built to the shapes KServe's logger sends (binary mode: ``ce-`` headers
set by ``pkg/logger/worker.go``, ``ce-time`` from the client's ``WithTimeNow``), plus the
structured and batched modes the cloudevents library and recent releases use. What the
sidecar forwards is read back with the aggregator's own decoders.
"""

from __future__ import annotations

import json

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.records import Decoded
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    kserve_headers,
    native_record,
    ndjson,
    structured_event,
    v2_request,
    v2_response,
)
from tests.exporter.sidecar.helpers import FakeClock, post, post_json, running, sample, sidecar_config, wait_for
from tests.support.fake_kafka import FakeLog, FakeProducer

T_REQUEST = "2026-11-28T18:06:00.000000000Z"
T_RESPONSE = "2026-11-28T18:06:00.040000000Z"  # 40 ms later
IRIS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


def forwarded(log: FakeLog, topic: str = "model-predictions") -> Decoded:
    """What the sidecar wrote, decoded as the aggregator would."""
    messages = [WireMessage(m.value, m.topic, m.headers, m.key) for m in log.messages(topic)]
    return decode_batch(messages, 0.0, Joiners()).decoded


def forwarded_rows(log: FakeLog) -> list[dict]:
    return [row for table in forwarded(log).predictions for row in table.to_pylist()]


def wait_rows(log: FakeLog, count: int) -> list[dict]:
    return wait_for(lambda: (rows := forwarded_rows(log)) and len(rows) >= count and rows, what=f"{count} rows")


def binary(
    event_id: str, kind: str, body: dict, time: str = T_REQUEST, **attributes: str
) -> tuple[bytes, dict[str, str]]:
    return json.dumps(body).encode(), kserve_headers(event_id, kind, time=time, **attributes)


def test_binary_v1_request_then_response_makes_one_record_per_instance():
    with running(sidecar_config()) as (sidecar, log):
        reply = post(sidecar, "/", *binary("ev-1", REQUEST_TYPE, {"instances": IRIS}))
        assert reply.status_code == 200 and reply.json() == {"records": 0, "rejected": 0, "duplicates": 0, "errors": []}
        reply = post(sidecar, "/", *binary("ev-1", RESPONSE_TYPE, {"predictions": [1, 2]}, time=T_RESPONSE))
        assert reply.status_code == 200 and reply.json()["records"] == 2
        rows = wait_rows(log, 2)
        assert [(r["request_id"], r["prediction_class"], r["f.instances_0"]) for r in rows] == [
            ("ev-1/0", "1", 6.8),
            ("ev-1/1", "2", 6.0),
        ]
        # Identity: the service name, and this sidecar's version where the event has none.
        assert {(r["model"], r["model_version"], r["model_namespace"], r["status"]) for r in rows} == {
            ("sklearn-iris", "4", "prod", "ok")
        }
        assert rows[0]["latency_ms"] == pytest.approx(40.0)
        assert {m.key for m in log.messages("model-predictions")} == {b"sklearn-iris"}
        assert sample(sidecar, "model_health_predictions_total", model="sklearn-iris", model_version="4") == 2
        bucket = sample(
            sidecar, "model_health_request_duration_seconds_bucket", model="sklearn-iris", model_version="4", le="0.05"
        )
        assert bucket == 2
        assert (
            sample(
                sidecar,
                "model_health_request_duration_seconds_bucket",
                model="sklearn-iris",
                model_version="4",
                le="0.025",
            )
            == 0
        )
        assert (
            sample(sidecar, "model_health_last_prediction_timestamp_seconds", model="sklearn-iris", model_version="4")
            == 1795889160.0
        )


def test_structured_oip_v2_response_first_then_request():
    with running(sidecar_config()) as (sidecar, log):
        structured = {"Content-Type": "application/cloudevents+json"}
        reply = post(
            sidecar, "/", structured_event("ev-2", RESPONSE_TYPE, v2_response([0.1, 0.9]), time=T_RESPONSE), structured
        )
        assert reply.status_code == 200
        reply = post(sidecar, "/", structured_event("ev-2", REQUEST_TYPE, v2_request(IRIS), time=T_REQUEST), structured)
        assert reply.status_code == 200 and reply.json()["records"] == 2
        rows = wait_rows(log, 2)
        assert [r["prediction_score"] for r in rows] == [0.1, 0.9]
        assert rows[0]["f.input-0_3"] == pytest.approx(1.4)
        # The v2 response names its model version: that wins over the sidecar's.
        assert {r["model_version"] for r in rows} == {"3"}
        assert rows[0]["latency_ms"] == pytest.approx(40.0)


def test_batched_mode_carries_request_and_response_together():
    events = [
        json.loads(structured_event("ev-3", REQUEST_TYPE, {"instances": [[1.0, 2.0]]}, time=T_REQUEST)),
        json.loads(structured_event("ev-3", RESPONSE_TYPE, {"predictions": [0]}, time=T_RESPONSE)),
    ]
    with running(sidecar_config()) as (sidecar, log):
        reply = post(sidecar, "/", json.dumps(events).encode(), {"Content-Type": "application/cloudevents-batch+json"})
        assert reply.status_code == 200 and reply.json()["records"] == 1
        (row,) = wait_rows(log, 1)
        assert (row["request_id"], row["prediction_class"]) == ("ev-3", "0")


def test_a_request_whose_response_never_comes_expires_and_is_counted():
    clock = FakeClock()
    config = sidecar_config(kserve={"join_ttl_seconds": 30})
    with running(config, clock=clock) as (sidecar, log):
        assert post(sidecar, "/", *binary("lonely", REQUEST_TYPE, {"instances": IRIS})).status_code == 200
        assert (
            post(sidecar, "/", *binary("orphan", RESPONSE_TYPE, {"predictions": [1]}, time=T_RESPONSE)).status_code
            == 200
        )
        clock.advance(31)
        rows = wait_rows(log, 2)
        # The request still shows its features, without a prediction.
        assert {(r["request_id"], r["status"], r["prediction_score"]) for r in rows} == {
            ("lonely/0", "no_response", None),
            ("lonely/1", "no_response", None),
        }
        unpaired = "model_health_inference_unpaired_total"
        wait_for(
            lambda: sample(sidecar, unpaired, side="response", reason="expired") == 1, what="the response to expire"
        )
        assert sample(sidecar, unpaired, side="request", reason="expired") == 1
        assert (
            sample(
                sidecar, "model_health_records_rejected_total", topic="model-predictions", reason="unmatched_response"
            )
            == 1
        )
        assert sample(sidecar, "model_health_prediction_errors_total", model="sklearn-iris", model_version="4") == 2
        dead = log.messages("model-health-deadletter")
        assert [dict(m.headers)["model-health-reason"] for m in dead] == [b"unmatched_response"]


def test_requests_waiting_at_shutdown_are_forwarded_without_prediction():
    config = sidecar_config()
    with running(config) as (sidecar, log):
        assert post(sidecar, "/", *binary("late", REQUEST_TYPE, {"instances": [[1.0]]})).status_code == 200
    assert [(r["request_id"], r["status"]) for r in forwarded_rows(log)] == [("late", "no_response")]


def test_native_json_one_record_array_and_ndjson():
    records = [native_record(i, model="sklearn-iris", features=3) for i in range(7)]
    with running(sidecar_config()) as (sidecar, log):
        assert post_json(sidecar, "/v1/predictions", records[0]).json()["records"] == 1
        assert post_json(sidecar, "/v1/predictions", records[1:3]).json()["records"] == 2
        reply = post(sidecar, "/v1/predictions", ndjson(records[3:]), {"Content-Type": "application/x-ndjson"})
        assert reply.status_code == 200 and reply.json()["records"] == 4
        rows = wait_rows(log, 7)
        assert sorted(r["request_id"] for r in rows) == [f"r-{i}" for i in range(7)]
        assert {r["model_version"] for r in rows} == {"7"}  # the record's own version stands
        assert sample(sidecar, "model_health_predictions_total", model="sklearn-iris", model_version="7") == 7


def test_a_partly_bad_ndjson_body_is_400_but_its_good_records_go_on():
    body = ndjson([native_record(1, model="sklearn-iris")]) + b"{broken\n" + json.dumps({"features": {}}).encode()
    with running(sidecar_config()) as (sidecar, log):
        reply = post(sidecar, "/v1/predictions", body, {"Content-Type": "application/x-ndjson"})
        assert reply.status_code == 400
        answer = reply.json()
        assert (answer["records"], answer["rejected"]) == (1, 2)
        assert {e["reason"] for e in answer["errors"]} == {"invalid_json", "missing_field"}
        assert len(wait_rows(log, 1)) == 1
        rejected = "model_health_records_rejected_total"
        assert sample(sidecar, rejected, topic="model-predictions", reason="invalid_json") == 1
        assert sample(sidecar, rejected, topic="model-predictions", reason="missing_field") == 1
        assert sample(sidecar, "model_health_ingest_requests_rejected_total", reason="invalid_json") == 1
        wait_for(lambda: len(log.messages("model-health-deadletter")) == 2, what="two dead letters")


def test_gpu_metrics_share_the_sidecar_endpoint():
    from exporter.gpu.fake import load_fake
    from exporter.sidecar import Sidecar
    from tests.exporter.sidecar.helpers import metrics

    config = sidecar_config(gpu={"mode": "sidecar", "interval_seconds": 0.2, "slow_interval_seconds": 0.2})
    sidecar = Sidecar(
        config, producer_factory=lambda _: FakeProducer(FakeLog()), nvml=load_fake(realtime=False)
    ).start()
    try:
        wait_for(lambda: metrics(sidecar).get("model_health_gpu_collector_up") == 1, what="a GPU sample")
        names = {key.split("{")[0] for key in metrics(sidecar)}
        assert {
            "model_health_gpu_utilization_ratio",
            "model_health_gpu_memory_used_bytes",
            "model_health_predictions_total",
        } <= names
        assert "gpu:" in sidecar.ready()[1]
        # The pod's GPU is its model's: GPU time accrues under the sidecar's model and version.
        gpu_seconds = (
            f'model_health_model_gpu_seconds_total{{gpu_uuid="{load_fake(realtime=False).uuid_of(0)}",'
            f'model="{config.model.name}",model_version="{config.model.version}"}}'
        )
        wait_for(lambda: (metrics(sidecar).get(gpu_seconds) or 0) > 0, what="GPU time of the sidecar's model")
    finally:
        sidecar.stop()


def test_a_retry_of_records_kafka_already_has_is_answered_without_sending_them_again():
    """A client that retries a body whose records were delivered (its answer was lost) gets a
    2xx saying they were duplicates, and Kafka gets nothing more."""
    records = [native_record(i, model="sklearn-iris", features=3) for i in range(5)]
    with running(sidecar_config()) as (sidecar, log):
        first = post(sidecar, "/v1/predictions", ndjson(records), {"Content-Type": "application/x-ndjson"})
        assert first.status_code == 200 and first.json()["records"] == 5
        retry = post(
            sidecar, "/v1/predictions", ndjson(records[2:] + [records[0]]), {"Content-Type": "application/x-ndjson"}
        )
        assert retry.status_code == 200 and (retry.json()["records"], retry.json()["duplicates"]) == (0, 4)
        fresh = post(
            sidecar,
            "/v1/predictions",
            ndjson([native_record(9, model="sklearn-iris")]),
            {"Content-Type": "application/x-ndjson"},
        )
        assert fresh.json()["records"] == 1
        rows = wait_rows(log, 6)
        assert sorted(r["request_id"] for r in rows) == ["r-0", "r-1", "r-2", "r-3", "r-4", "r-9"]
        assert sample(sidecar, "model_health_records_duplicate_total", topic="model-predictions") == 4
        assert sample(sidecar, "model_health_predictions_total", model="sklearn-iris", model_version="7") == 6


def test_a_copy_of_a_kserve_event_is_taken_once():
    with running(sidecar_config()) as (sidecar, log):
        request = binary("ev-9", REQUEST_TYPE, {"instances": IRIS})
        response = binary("ev-9", RESPONSE_TYPE, {"predictions": [1, 2]}, time=T_RESPONSE)
        for body, headers in (request, request, response, response):
            assert post(sidecar, "/", body, headers).status_code == 200
        assert len(wait_rows(log, 2)) == 2
        assert sample(sidecar, "model_health_records_duplicate_total", topic="model-predictions") == 2
