"""``kafka.format`` other than ``auto``: one decoder, every other format refused with a reason."""

from __future__ import annotations

import json

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.fixed_format import fixed_format
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
LABELS = "model-labels"
INPUTS = "seldon.prod.model.iris.inputs"
OUTPUTS = "seldon.prod.model.iris.outputs"

# One message of each format: (what it is, the wire messages, rows once decoded).
SAMPLES = {
    "json": ([WireMessage(json.dumps(native_record(0)).encode(), TOPIC)], 1),
    "json array": ([WireMessage(json.dumps([native_record(0), native_record(1)]).encode(), TOPIC)], 2),
    "ndjson": ([WireMessage(ndjson([native_record(0), native_record(1), native_record(2)]), TOPIC)], 3),
    "arrow": ([WireMessage(ipc_stream(arrow_batch(rows=4)), TOPIC)], 4),
    "kserve binary": (
        [
            WireMessage(
                b'{"instances": [[1.0, 2.0]]}', TOPIC, kafka_headers(kserve_headers("k1", REQUEST_TYPE, prefix="ce_"))
            ),
            WireMessage(
                b'{"predictions": [1]}', TOPIC, kafka_headers(kserve_headers("k1", RESPONSE_TYPE, prefix="ce_"))
            ),
        ],
        1,
    ),
    "kserve structured": (
        [
            WireMessage(structured_event("k2", REQUEST_TYPE, {"instances": [[1.0, 2.0]]}), TOPIC),
            WireMessage(structured_event("k2", RESPONSE_TYPE, {"predictions": [0]}), TOPIC),
        ],
        1,
    ),
    "seldon": (
        [
            WireMessage(seldon_request([[6.8, 2.8]]), INPUTS, key=b"s1", record_time=1.0),
            WireMessage(seldon_response([1]), OUTPUTS, key=b"s1", record_time=1.1),
        ],
        1,
    ),
}
FAMILY = {
    "json": "json",
    "json array": "json",
    "ndjson": "json",
    "arrow": "arrow",
    "kserve binary": "kserve",
    "kserve structured": "kserve",
    "seldon": "seldon",
}
REASON = {
    "json": Reason.INVALID_JSON,
    "ndjson": Reason.INVALID_JSON,
    "arrow": Reason.INVALID_ARROW,
    "kserve": Reason.INVALID_CLOUDEVENT,
    "seldon": Reason.INVALID_PROTOBUF,
}
WHAT = {
    "json": "is native JSON",
    "arrow": "is Arrow IPC",
    "kserve": "is a KServe CloudEvent",
    "seldon": "comes from a Seldon model topic",
}


def rows(decoded) -> int:
    return sum(t.num_rows for t in decoded.predictions)


@pytest.mark.parametrize("setting", ["json", "ndjson", "arrow", "kserve", "seldon"])
@pytest.mark.parametrize("sample", list(SAMPLES))
def test_only_the_configured_format_is_decoded(setting, sample):
    messages, expected_rows = SAMPLES[sample]
    expected = fixed_format(setting)
    batch = decode_batch(messages, 10.0, Joiners(), labels_topic=LABELS, expected=expected)
    accepted = FAMILY[sample] == ("json" if setting == "ndjson" else setting)
    if setting == "json" and sample == "ndjson":
        accepted = False  # several JSON lines are not one JSON document
    if accepted:
        assert batch.decoded.rejected == [] and rows(batch.decoded) == expected_rows
        return
    assert rows(batch.decoded) == 0
    assert len(batch.decoded.rejected) == len(messages)  # each refused whole, once
    for refused, message in zip(batch.decoded.rejected, messages):
        assert refused.reason is REASON[setting]
        assert refused.detail.startswith(f"kafka.format is {setting}")
        assert refused.payload == message.value  # the dead letter keeps the message as it came
        if not (setting == "json" and sample == "ndjson"):
            assert refused.detail.endswith(WHAT[FAMILY[sample]])
    # What the message was, not what was wanted, labels records_consumed_total.
    assert [f.value for f in batch.formats][0] in {"json", "ndjson", "arrow", "kserve", "seldon"}


def test_json_refuses_ndjson_and_says_what_to_set():
    [refused] = decode_batch(
        [WireMessage(ndjson([native_record(0), native_record(1)]), TOPIC)], 1.0, Joiners(), expected=WireFormat.JSON
    ).decoded.rejected
    assert refused.reason is Reason.INVALID_JSON
    assert "several lines" in refused.detail and "kafka.format ndjson" in refused.detail


def test_json_still_reads_one_document_over_several_lines():
    pretty = json.dumps(native_record(0), indent=2).encode()
    batch = decode_batch([WireMessage(pretty, TOPIC)], 1.0, Joiners(), expected=WireFormat.JSON)
    assert batch.decoded.rejected == [] and rows(batch.decoded) == 1


def test_broken_json_is_refused_by_the_json_decoder_itself():
    batch = decode_batch(
        [WireMessage(b'{"model": "fraud",\n"features": ', TOPIC)], 1.0, Joiners(), expected=WireFormat.JSON
    )
    [refused] = batch.decoded.rejected
    assert refused.reason is Reason.INVALID_JSON and refused.detail.startswith("not JSON")


@pytest.mark.parametrize("value", [b"", b"\x00\x01garbage"])
def test_empty_and_unknown_messages_are_refused_under_the_configured_reason(value):
    [refused] = decode_batch([WireMessage(value, TOPIC)], 1.0, Joiners(), expected=WireFormat.ARROW).decoded.rejected
    assert refused.reason is Reason.INVALID_ARROW
    assert refused.detail == (
        "kafka.format is arrow, but this message "
        + ("is empty" if not value else "is not JSON, Arrow IPC or a CloudEvent")
    )


def test_the_labels_topic_is_always_detected():
    labels = [
        WireMessage(json.dumps({"model": "fraud", "request_id": "r-0", "label": 1}).encode(), LABELS),
        WireMessage(
            ipc_stream(arrow_batch(rows=2).select(["model", "request_id"]).append_column("label", [[0, 1]])), LABELS
        ),
    ]
    batch = decode_batch(labels, 1.0, Joiners(), labels_topic=LABELS, expected=WireFormat.KSERVE)
    assert batch.decoded.rejected == [] and sum(t.num_rows for t in batch.decoded.labels) == 3


def test_auto_and_unknown_settings():
    assert fixed_format("auto") is None
    with pytest.raises(ValueError, match="unknown wire format 'xml'"):
        fixed_format("xml")
