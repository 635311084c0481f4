from __future__ import annotations

import json

import pyarrow as pa
import pytest

from exporter.decoders import detect, formats
from exporter.decoders.detect import Joiners, WireMessage, decode_batch, decode_message
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Reason
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    arrow_batch,
    ipc_stream,
    kafka_headers,
    kserve_headers,
    native_record,
    ndjson,
    seldon_request,
    seldon_response,
    structured_event,
)

TOPIC = "model-predictions"


def test_formats_are_told_apart_per_message():
    joiners = Joiners()
    cases = [
        (json.dumps(native_record(0)).encode(), (), TOPIC, WireFormat.JSON),
        (b"  \n" + json.dumps([native_record(0)]).encode(), (), TOPIC, WireFormat.JSON),
        (ndjson([native_record(0), native_record(1)]), (), TOPIC, WireFormat.NDJSON),
        (ipc_stream(arrow_batch(rows=3)), (), TOPIC, WireFormat.ARROW),
        (b'{"instances": [[1.0]]}', kserve_headers("h", REQUEST_TYPE), "anything", WireFormat.KSERVE),
        (
            b'{"predictions": [1]}',
            kafka_headers(kserve_headers("h", RESPONSE_TYPE, prefix="ce_")),
            TOPIC,
            WireFormat.KSERVE,
        ),
        (structured_event("s", REQUEST_TYPE, {"instances": [[1.0]]}), (), TOPIC, WireFormat.KSERVE),
        (seldon_request([[1.0]]), (), "seldon.ns.model.iris.inputs", WireFormat.SELDON),
        (b"\x00\x01binary", (), TOPIC, WireFormat.UNKNOWN),
        (b"", (), TOPIC, WireFormat.UNKNOWN),
    ]
    for value, headers, topic, expected in cases:
        assert decode_message(value, headers, topic, 0.0, joiners, key=b"k").format is expected, value[:40]


def test_unknown_and_empty_messages_are_refused():
    for value in (b"hello", b"", None):
        result = decode_message(value, None, TOPIC, 0.0, Joiners())
        assert [r.reason for r in result.decoded.rejected] == [Reason.UNKNOWN_FORMAT]


def test_labels_topic_reads_records_as_labels():
    message = json.dumps({"model": "fraud", "request_id": "r-1", "label": 1}).encode()
    result = decode_message(message, None, "labels-in", 5.0, Joiners(), labels_topic="labels-in")
    assert result.decoded.labels[0].to_pylist()[0]["label_class"] == "1"


def test_one_record_messages_of_a_batch_make_one_table_per_model():
    messages = [WireMessage(json.dumps(native_record(i)).encode(), TOPIC) for i in range(100)]
    messages.append(WireMessage(b"not json", TOPIC))
    batch = decode_batch(messages, 0.0, Joiners())
    [table] = batch.decoded.predictions
    assert table.num_rows == 100
    assert batch.formats == [WireFormat.JSON] * 100 + [WireFormat.UNKNOWN]
    assert [r.payload for r in batch.decoded.rejected] == [b"not json"]


def test_kserve_and_seldon_pairs_across_batches_and_the_per_batch_sweep():
    joiners = Joiners()
    kserve_ttl = joiners.kserve.halves.ttl_seconds
    first = decode_batch(
        [
            WireMessage(b'{"instances": [[1.0]]}', TOPIC, kserve_headers("a", REQUEST_TYPE)),
            WireMessage(b'{"instances": [[2.0]]}', TOPIC, kserve_headers("lonely", REQUEST_TYPE)),
            WireMessage(seldon_request([[1.0]]), "seldon.ns.model.iris.inputs", key=b"s"),
        ],
        0.0,
        joiners,
    )
    assert first.decoded.predictions == []
    second = decode_batch(
        [
            WireMessage(b'{"predictions": [1]}', TOPIC, kserve_headers("a", RESPONSE_TYPE)),
            WireMessage(seldon_response([0]), "seldon.ns.model.iris.outputs", key=b"s"),
        ],
        1.0,
        joiners,
    )
    assert sorted(t.column("model")[0].as_py() for t in second.decoded.predictions) == ["iris", "sklearn-iris"]
    swept = decode_batch([], kserve_ttl + 1.0, joiners)
    [table] = swept.decoded.predictions
    assert table.column("request_id").to_pylist() == ["lonely"]
    assert joiners.kserve.expired_requests == 1


def test_joiners_drain_at_shutdown():
    joiners = Joiners()
    joiners.kserve.configure({"sklearn-iris": "all"})
    decode_message(b'{"predictions": [1]}', kserve_headers("x", RESPONSE_TYPE), TOPIC, 0.0, joiners)
    assert [r.reason for r in joiners.drain(now=0.0).rejected] == [Reason.UNMATCHED_RESPONSE]


def test_a_decoder_crash_costs_only_its_message(monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(formats, "decode_arrow_ipc_into", crash)  # what the ARROW row calls
    batch = decode_batch(
        [
            WireMessage(ipc_stream(arrow_batch(rows=2)), TOPIC),
            WireMessage(json.dumps(native_record(0)).encode(), TOPIC),
        ],
        0.0,
        Joiners(),
    )
    assert batch.decoded.prediction_rows == 1
    [rejected] = batch.decoded.rejected
    assert rejected.reason is Reason.INVALID_ARROW and "RuntimeError: boom" in rejected.detail


def test_structured_cloudevent_detection_needs_a_top_level_specversion():
    record = native_record(0, features=1)
    record["features"] = {"specversion": 1.0}
    assert detect.detect_format(json.dumps(record).encode(), (), TOPIC) is WireFormat.JSON


@pytest.mark.parametrize(
    "headers", [{"Ce-Id": "1"}, [("content-type", b"application/cloudevents+json; charset=utf-8")]]
)
def test_cloudevent_headers_in_any_case(headers):
    from exporter.decoders.message_headers import normalise_headers

    assert detect.detect_format(b"{}", normalise_headers(headers), TOPIC) is WireFormat.KSERVE


def test_arrow_labels_on_the_labels_topic():
    table = pa.table({"model": ["m"], "request_id": ["r"], "label": ["fraud"]})
    result = decode_message(ipc_stream(table), (), "model-labels", 0.0, Joiners())
    assert result.format is WireFormat.ARROW and result.decoded.labels[0].num_rows == 1


def test_batched_cloudevents_are_kserve_with_or_without_the_content_type():
    batch = b"[" + structured_event("b", REQUEST_TYPE, {"instances": [[1.0]]}) + b"]"
    assert detect.detect_format(batch, (), TOPIC) is WireFormat.KSERVE
    headers = (("content-type", b"application/cloudevents-batch+json"),)
    assert detect.detect_format(b"[]", headers, TOPIC) is WireFormat.KSERVE
