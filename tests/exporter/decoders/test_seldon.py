from __future__ import annotations

import numpy as np
import pytest

from exporter.decoders.oip_protobuf import ModelInferRequest, ModelInferResponse
from exporter.decoders.seldon import SeldonJoiner, decode_seldon, seldon_topic
from exporter.records import Reason
from tests.exporter.decoders.messages import seldon_request, seldon_response

INPUTS = "seldon.prod.model.iris.inputs"
OUTPUTS = "seldon.prod.model.iris.outputs"
IRIS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


@pytest.mark.parametrize("raw", [False, True])
def test_inputs_and_outputs_join_by_kafka_key(raw):
    joiner = SeldonJoiner()
    first = decode_seldon(seldon_request(IRIS, raw=raw), INPUTS, 10.0, joiner, key=b"req-1", record_time=1000.0)
    assert first.predictions == [] and first.rejected == []
    decoded = decode_seldon(seldon_response([1, 2], raw=raw), OUTPUTS, 10.0, joiner, key=b"req-1", record_time=1000.05)
    assert decoded.rejected == []
    [table] = decoded.predictions
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == ["req-1/0", "req-1/1"]
    # "iris_1" answering with version "1": Seldon's internal name and pinned version, not the user's.
    assert rows[0]["model"] == "iris" and rows[0]["model_namespace"] == "prod" and rows[0]["model_version"] is None
    assert rows[0]["timestamp"] == 1000.0 and rows[0]["latency_ms"] == pytest.approx(50.0)
    assert (rows[1]["prediction_score"], rows[1]["prediction_class"]) == (2.0, "2")
    assert table.column("f.predict_0").to_pylist() == pytest.approx([6.8, 6.0])


def test_request_id_falls_back_to_the_id_field():
    joiner = SeldonJoiner()
    decode_seldon(seldon_request(IRIS[:1], request_id="in-msg"), INPUTS, 0.0, joiner)
    response = ModelInferResponse.FromString(seldon_response([1]))
    response.id = "in-msg"
    decoded = decode_seldon(response.SerializeToString(), OUTPUTS, 7.0, joiner)
    [table] = decoded.predictions
    assert table.column("request_id").to_pylist() == ["in-msg"]
    assert table.column("timestamp").to_pylist() == [7.0]  # no record time given: now


def test_named_tensors_bytes_and_fp16_raw_contents():
    request = ModelInferRequest(id="r")
    request.inputs.add(name="age", datatype="INT32", shape=[2])
    request.inputs.add(name="country", datatype="BYTES", shape=[2, 1])
    request.inputs.add(name="score", datatype="FP16", shape=[2, 1])
    request.raw_input_contents.extend(
        [
            np.asarray([31, 47], "<i4").tobytes(),
            b"\x02\x00\x00\x00DE\x02\x00\x00\x00FR",
            np.asarray([0.5, 1.5], "<f2").tobytes(),
        ]
    )
    response = ModelInferResponse(id="r")
    response.outputs.add(name="label", datatype="BYTES", shape=[2]).contents.bytes_contents.extend([b"fraud", b"ok"])
    joiner = SeldonJoiner()
    decode_seldon(request.SerializeToString(), INPUTS, 0.0, joiner)
    [table] = decode_seldon(response.SerializeToString(), OUTPUTS, 0.0, joiner).predictions
    assert table.select(["f.age", "f.country", "f.score", "prediction_class"]).to_pylist() == [
        {"f.age": 31.0, "f.country": "DE", "f.score": 0.5, "prediction_class": "fraud"},
        {"f.age": 47.0, "f.country": "FR", "f.score": 1.5, "prediction_class": "ok"},
    ]


def test_model_names_may_hold_dots():
    assert seldon_topic("seldon.ns.model.iris.v2.outputs").model == "iris.v2"
    assert seldon_topic("seldon.ns.pipeline.iris.outputs").kind == "pipeline"
    assert seldon_topic("seldon.ns.errors.errors") is None


def test_inputs_without_outputs_expire_with_null_predictions():
    joiner = SeldonJoiner(ttl_seconds=5.0, modes={"iris": "all"})
    decode_seldon(seldon_request(IRIS), INPUTS, 0.0, joiner, key=b"k")
    [table] = joiner.expire(now=5.0).predictions
    assert table.column("status").to_pylist() == ["no_response"] * 2
    assert joiner.expired_requests == 1


def test_outputs_without_inputs_are_unmatched_after_the_ttl():
    joiner = SeldonJoiner(ttl_seconds=5.0, modes={"iris": "all"})
    decode_seldon(seldon_response([1]), OUTPUTS, 0.0, joiner, key=b"k")
    assert [r.reason for r in joiner.drain(now=1.0).rejected] == [Reason.UNMATCHED_RESPONSE]


@pytest.mark.parametrize(
    ("topic", "build", "reason"),
    [
        (INPUTS, lambda: b"\x0a\xff\xff\xff", Reason.INVALID_PROTOBUF),
        (INPUTS, lambda: ModelInferRequest(id="x").SerializeToString(), Reason.BAD_FEATURES),
        (INPUTS, lambda: _request_with(shape=[2, 2], values=[1.0, 2.0, 3.0]), Reason.SHAPE_MISMATCH),
        (INPUTS, lambda: _request_with(datatype="FP16", values=[1.0]), Reason.BAD_FEATURES),
        (INPUTS, lambda: _request_with(raw=[b"\x00\x00"]), Reason.SHAPE_MISMATCH),
        (INPUTS, lambda: _request_with(shape=[-1, 1]), Reason.SHAPE_MISMATCH),
        (INPUTS, lambda: seldon_request(IRIS), Reason.MISSING_FIELD),  # no key, id or header
        (OUTPUTS, lambda: ModelInferResponse(id="x").SerializeToString(), Reason.BAD_PREDICTION),
        ("seldon.prod.experiment.iris.inputs", lambda: seldon_request(IRIS), Reason.UNKNOWN_FORMAT),
    ],
)
def test_bad_messages_are_refused(topic, build, reason):
    message = build()
    decoded = decode_seldon(message, topic, 0.0, SeldonJoiner())
    assert [(r.reason, r.payload) for r in decoded.rejected] == [(reason, message)]


def _request_with(*, shape=(1, 1), datatype="FP32", values=(1.0,), raw=()) -> bytes:
    request = ModelInferRequest(id="x")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=list(shape))
    if datatype == "FP32":
        tensor.contents.fp32_contents.extend(values)
    request.raw_input_contents.extend(raw)
    return request.SerializeToString()


def test_x_request_id_header_is_the_last_resort():
    joiner = SeldonJoiner()
    decode_seldon(seldon_request(IRIS[:1]), INPUTS, 0.0, joiner, headers=[("x-request-id", b"hdr")])
    decoded = decode_seldon(seldon_response([0]), OUTPUTS, 0.0, joiner, headers=[("x-request-id", b"hdr")])
    assert decoded.predictions[0].column("request_id").to_pylist() == ["hdr"]
