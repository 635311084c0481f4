"""Records the sidecar encodes decode back, through the aggregator's own decoders, to the same rows."""

from __future__ import annotations

import json
import math

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.native_json import decode_native_json
from exporter.sidecar.encoding import encode
from tests.exporter.decoders.messages import native_record

RECORDS = [
    native_record(0, features=6),
    native_record(1, features=6, prediction={"score": 0.2, "class": "legit"}),
    native_record(2, features=6, prediction="fraud", latency_ms=None, status="error"),
    native_record(3, features=6, prediction=None, model_namespace="prod"),
    native_record(4, model="churn", features=2, model_version=None),
    native_record(5, features=6),
    native_record(6, model="churn", features=2),
]


def decoded_tables(records: list[dict]) -> list:
    body = "\n".join(json.dumps(r) for r in records).encode()
    return decode_native_json(body, now=0.0).predictions


def rows(tables) -> list[dict]:
    out = []
    for table in tables:
        for row in table.to_pylist():
            out.append({k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))})
    return sorted(out, key=lambda r: r["request_id"])


@pytest.mark.parametrize("fmt", ["ndjson", "arrow"])
def test_round_trip_through_the_aggregator_decoders(fmt):
    tables = decoded_tables(RECORDS)
    messages = encode(tables, fmt, max_records=2)
    assert {m.key for m in messages} == {b"fraud", b"churn"}
    assert all(m.records <= 2 for m in messages) and sum(m.records for m in messages) == len(RECORDS)
    batch = decode_batch([WireMessage(m.value, "model-predictions", (), m.key) for m in messages], 1.0, Joiners())
    assert not batch.decoded.rejected
    assert {f.value for f in batch.formats} == ({"json", "ndjson"} if fmt == "ndjson" else {"arrow"})
    assert rows(batch.decoded.predictions) == rows(tables)


def test_each_message_holds_one_model():
    messages = encode(decoded_tables(RECORDS), "ndjson", max_records=10)
    for message in messages:
        models = {json.loads(line)["model"] for line in message.value.splitlines()}
        assert models == {message.key.decode()}


def test_arrow_parts_that_disagree_on_a_type_go_out_separately():
    numeric = decoded_tables([{"model": "m", "request_id": "a", "features": {"x": 1.5}, "prediction": 1}])
    text = decoded_tables([{"model": "m", "request_id": "b", "features": {"x": "high"}, "prediction": 0}])
    messages = encode(numeric + text, "arrow", max_records=100)
    assert len(messages) == 2
    batch = decode_batch([WireMessage(m.value, "t") for m in messages], 1.0, Joiners())
    assert [row["f.x"] for row in rows(batch.decoded.predictions)] == [1.5, "high"]


def test_non_finite_values_travel_as_missing():
    tables = decoded_tables(
        [{"model": "m", "request_id": "a", "features": {"x": float("nan"), "y": 2.0}, "prediction": float("inf")}]
    )
    (message,) = encode(tables, "ndjson", max_records=10)
    assert json.loads(message.value) == {"model": "m", "timestamp": 0.0, "request_id": "a", "features": {"y": 2.0}}
