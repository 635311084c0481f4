from __future__ import annotations

import json

import pytest

from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.records import Reason
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    T0,
    kafka_headers,
    kserve_headers,
    structured_event,
    v2_request,
    v2_response,
)

IRIS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


def body(document: dict) -> bytes:
    return json.dumps(document).encode()


def request(joiner, event_id, document, now=100.0, **header_options):
    return decode_kserve(body(document), now, joiner, headers=kserve_headers(event_id, REQUEST_TYPE, **header_options))


def response(joiner, event_id, document, now=100.0, **header_options):
    header_options.setdefault("time", "2026-11-28T18:06:00.250Z")
    return decode_kserve(body(document), now, joiner, headers=kserve_headers(event_id, RESPONSE_TYPE, **header_options))


def test_v1_request_then_response_becomes_one_row_per_instance():
    joiner = KServeJoiner()
    first = request(joiner, "5f2c", {"instances": IRIS})
    assert first.predictions == [] and first.rejected == [] and joiner.pending == 1
    decoded = response(joiner, "5f2c", {"predictions": [1, 2]})
    assert decoded.rejected == [] and joiner.pending == 0
    [table] = decoded.predictions
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == ["5f2c/0", "5f2c/1"]
    assert rows[0] == {
        "model": "sklearn-iris",
        "model_version": None,  # KServe's agent names no version
        "deployment_slot": "default",  # its --endpoint: a slot, only the config maps it to a version
        "model_namespace": "prod",
        "request_id": "5f2c/0",
        "timestamp": T0,
        "prediction_score": 1.0,
        "prediction_class": "1",
        "latency_ms": pytest.approx(250.0),
        "status": "ok",
        "f.instances_0": 6.8,
        "f.instances_1": 2.8,
        "f.instances_2": 4.8,
        "f.instances_3": 1.4,
    }


def test_response_may_arrive_first_and_one_instance_keeps_the_plain_id():
    joiner = KServeJoiner()
    assert response(joiner, "only", {"predictions": [0.2]}).predictions == []
    [table] = request(joiner, "only", {"instances": [{"sepal_length": 5.1, "species_hint": "setosa"}]}).predictions
    row = table.to_pylist()[0]
    assert row["request_id"] == "only" and row["prediction_score"] == 0.2
    assert row["f.sepal_length"] == 5.1 and row["f.species_hint"] == "setosa"


def test_kafka_binary_mode_headers():
    joiner = KServeJoiner()
    for kind, document in ((REQUEST_TYPE, {"instances": IRIS[:1]}), (RESPONSE_TYPE, {"predictions": [1]})):
        headers = kafka_headers(kserve_headers("k-1", kind, prefix="ce_"))
        decoded = decode_kserve(body(document), 0.0, joiner, headers=headers)
    assert decoded.prediction_rows == 1 and decoded.predictions[0].column("model").to_pylist() == ["sklearn-iris"]


def test_structured_mode():
    joiner = KServeJoiner()
    content_type = {"content-type": "application/cloudevents+json"}
    decode_kserve(
        structured_event("s-1", REQUEST_TYPE, {"instances": IRIS}, time="2026-11-28T18:06:00Z"),
        0.0,
        joiner,
        headers=content_type,
    )
    decoded = decode_kserve(
        structured_event("s-1", RESPONSE_TYPE, {"predictions": [0, 1]}), 0.0, joiner, headers=content_type
    )
    [table] = decoded.predictions
    assert table.column("prediction_class").to_pylist() == ["0", "1"]
    assert table.column("timestamp").to_pylist() == [T0, T0]
    assert table.column("latency_ms").to_pylist() == [None, None]  # the response had no time


def test_v2_bodies_with_one_wide_tensor():
    joiner = KServeJoiner()
    request(joiner, "v2", v2_request(IRIS))
    [table] = response(joiner, "v2", v2_response([0.9, 0.1])).predictions
    assert table.column_names[-4:] == ["f.input-0_0", "f.input-0_1", "f.input-0_2", "f.input-0_3"]
    assert table.column("f.input-0_3").to_pylist() == pytest.approx([1.4, 1.6])
    assert table.column("prediction_score").to_pylist() == [0.9, 0.1]
    assert table.column("model_version").to_pylist() == ["3", "3"]  # the response's model_version beats the endpoint


def test_v2_one_named_tensor_per_feature_and_text_outputs():
    joiner = KServeJoiner()
    request(
        joiner,
        "cols",
        {
            "inputs": [
                {"name": "age", "shape": [2], "datatype": "INT64", "data": [31, 47]},
                {"name": "country", "shape": [2, 1], "datatype": "BYTES", "data": [["DE"], ["FR"]]},
                {"name": "member", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]},
            ]
        },
    )
    [table] = response(
        joiner,
        "cols",
        {
            "outputs": [
                {"name": "label", "shape": [2, 1], "datatype": "BYTES", "data": ["fraud", "ok"]},
                {"name": "proba", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 0.9, 0.8, 0.2]},
            ]
        },
    ).predictions
    assert table.select(["f.age", "f.country", "f.member", "prediction_score", "prediction_class"]).to_pylist() == [
        {"f.age": 31.0, "f.country": "DE", "f.member": "true", "prediction_score": 0.9, "prediction_class": "fraud"},
        {"f.age": 47.0, "f.country": "FR", "f.member": "false", "prediction_score": 0.2, "prediction_class": "ok"},
    ]


def test_model_version_header_wins():
    joiner = KServeJoiner()
    request(joiner, "mv", {"instances": [[1.0]]})
    headers = kserve_headers("mv", RESPONSE_TYPE) | {"ce-modelversion": "v12"}
    [table] = decode_kserve(body(v2_response([0.5])), 0.0, joiner, headers=headers).predictions
    assert table.column("model_version").to_pylist() == ["v12"]


def test_other_components_are_their_own_model_and_never_pair_with_the_predictor():
    joiner = KServeJoiner()
    request(joiner, "same-id", {"instances": [[1.0]]}, component="transformer")
    assert response(joiner, "same-id", {"predictions": [1]}).predictions == []
    [table] = response(joiner, "same-id", {"predictions": [0]}, component="transformer").predictions
    assert table.column("model").to_pylist() == ["sklearn-iris-transformer"]


def test_request_without_response_is_emitted_after_the_ttl_with_null_prediction():
    joiner = KServeJoiner(ttl_seconds=30.0, modes={"sklearn-iris": "all"})
    request(joiner, "lonely", {"instances": IRIS}, now=100.0)
    assert joiner.expire(now=129.0).predictions == []
    [table] = joiner.expire(now=130.0).predictions
    assert table.column("status").to_pylist() == ["no_response", "no_response"]
    assert table.column("prediction_score").to_pylist() == [None, None]
    assert table.column("f.instances_0").to_pylist() == [6.8, 6.0]
    assert joiner.expired_requests == 1 and joiner.pending == 0


def test_response_without_request_is_refused_after_the_ttl():
    joiner = KServeJoiner(ttl_seconds=30.0, modes={"sklearn-iris": "all"})
    response(joiner, "orphan", {"predictions": [1]}, now=0.0)
    # The sweep also happens when the next event arrives.
    decoded = request(joiner, "other", {"instances": [[1.0]]}, now=31.0)
    [rejected] = decoded.rejected
    assert rejected.reason is Reason.UNMATCHED_RESPONSE
    assert json.loads(rejected.payload) == {"predictions": [1]}
    assert ("ce-id", b"orphan") in rejected.headers
    assert joiner.expired_responses == 1


def test_full_buffer_evicts_oldest_and_counts_it():
    joiner = KServeJoiner(max_pending=2)
    request(joiner, "a", {"instances": [[1.0]]})
    response(joiner, "b", {"predictions": [1]})
    decoded = request(joiner, "c", {"instances": [[3.0]]})
    [table] = decoded.predictions
    assert table.column("request_id").to_pylist() == ["a"] and table.column("status").to_pylist() == ["no_response"]
    decoded = request(joiner, "d", {"instances": [[4.0]]})
    assert [r.reason for r in decoded.rejected] == [Reason.UNMATCHED_RESPONSE]
    assert (joiner.evicted_requests, joiner.evicted_responses, joiner.pending) == (1, 1, 2)


def test_prediction_count_mismatch_refuses_the_response_and_keeps_the_features():
    joiner = KServeJoiner()
    request(joiner, "mm", {"instances": IRIS})
    decoded = response(joiner, "mm", {"predictions": [1, 2, 3]})
    assert [r.reason for r in decoded.rejected] == [Reason.SHAPE_MISMATCH]
    assert decoded.predictions[0].column("status").to_pylist() == ["bad_response", "bad_response"]


def test_unreadable_response_is_refused_at_once_and_releases_its_request():
    joiner = KServeJoiner()
    request(joiner, "err", {"instances": IRIS})
    decoded = response(joiner, "err", {"error": "model failed"})
    assert [r.reason for r in decoded.rejected] == [Reason.BAD_PREDICTION]
    assert decoded.predictions[0].column("status").to_pylist() == ["bad_response", "bad_response"]
    assert joiner.pending == 0


def test_request_too_wide_to_monitor_still_gives_prediction_rows():
    joiner = KServeJoiner()
    image = [[[0.0] * 64 for _ in range(64)] for _ in range(2)]  # 2 x 64 x 64 = 4096+ features per row after flattening
    decoded = request(joiner, "img", {"instances": [[image]]})
    assert [r.reason for r in decoded.rejected] == [Reason.TOO_LARGE]
    [table] = response(joiner, "img", {"predictions": [[0.1, 0.9]]}).predictions
    assert table.num_rows == 1 and table.column("prediction_score").to_pylist() == [0.9]
    assert table.column_names[-1] == "status"  # no features


def test_missing_event_time_means_now_and_no_latency():
    joiner = KServeJoiner()
    request(joiner, "nt", {"instances": [[1.0]]}, time=None, now=500.0)
    [table] = response(joiner, "nt", {"predictions": [1]}, time=None, now=501.0).predictions
    assert table.column("timestamp").to_pylist() == [501.0]
    assert table.column("latency_ms").to_pylist() == [None]


@pytest.mark.parametrize(
    ("headers", "message", "reason"),
    [
        ({"ce-inferenceservicename": ""}, b'{"instances": [[1]]}', Reason.MISSING_FIELD),
        ({"ce-type": "com.example.other"}, b'{"instances": [[1]]}', Reason.INVALID_CLOUDEVENT),
        ({"ce-specversion": "0.1"}, b'{"instances": [[1]]}', Reason.INVALID_CLOUDEVENT),
        ({"ce-time": "not a time"}, b'{"instances": [[1]]}', Reason.INVALID_CLOUDEVENT),
        ({"ce-id": None}, b'{"instances": [[1]]}', Reason.INVALID_CLOUDEVENT),
        ({}, b"{broken", Reason.INVALID_JSON),
        ({}, b'{"instances": []}', Reason.BAD_FEATURES),
        (
            {},
            b'{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}',
            Reason.SHAPE_MISMATCH,
        ),
        (
            {},
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}, '
            b'{"name": "y", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}',
            Reason.SHAPE_MISMATCH,
        ),
        ({}, b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1]}]}', Reason.BAD_FEATURES),
        ({}, b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]}', Reason.BAD_FEATURES),
    ],
)
def test_bad_request_events_are_refused(headers, message, reason):
    merged = kserve_headers("bad", REQUEST_TYPE) | headers
    decoded = decode_kserve(message, 0.0, KServeJoiner(), headers={k: v for k, v in merged.items() if v is not None})
    assert [(r.reason, r.payload) for r in decoded.rejected] == [(reason, message)]
    assert decoded.predictions == []


def test_batched_mode_carries_request_and_response_in_one_post():
    events = [
        json.loads(structured_event("b-1", REQUEST_TYPE, {"instances": IRIS}, time="2026-11-28T18:06:00Z")),
        json.loads(structured_event("b-1", RESPONSE_TYPE, {"predictions": [0, 1]}, time="2026-11-28T18:06:00.1Z")),
    ]
    events[0]["metadata"] = '{"x-request-id": ["b-1"]}'  # recent loggers add this extension
    decoded = decode_kserve(
        json.dumps(events).encode(), 0.0, KServeJoiner(), headers={"Content-Type": "application/cloudevents-batch+json"}
    )
    assert decoded.rejected == []
    [table] = decoded.predictions
    assert table.column("request_id").to_pylist() == ["b-1/0", "b-1/1"]
    assert table.column("latency_ms").to_pylist() == pytest.approx([100.0, 100.0])


def test_a_bad_event_in_a_batch_is_refused_alone():
    events = [json.loads(structured_event("b-2", REQUEST_TYPE, {"instances": [[1.0]]})), {"specversion": "1.0"}]
    joiner = KServeJoiner()
    decoded = decode_kserve(
        json.dumps(events).encode(), 0.0, joiner, headers={"content-type": "application/cloudevents-batch+json"}
    )
    [rejected] = decoded.rejected
    assert rejected.reason is Reason.INVALID_CLOUDEVENT and json.loads(rejected.payload) == {"specversion": "1.0"}
    assert joiner.pending == 1


@pytest.mark.parametrize("message", [b"[]", b"[1, 2", b'{"not": "an array"}'])
def test_broken_batches_are_refused(message):
    decoded = decode_kserve(
        message, 0.0, KServeJoiner(), headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert [r.reason for r in decoded.rejected] == [Reason.INVALID_CLOUDEVENT]
