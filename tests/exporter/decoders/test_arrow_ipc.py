from __future__ import annotations

import math

import pyarrow as pa
import pytest

from exporter.decoders.arrow_ipc import decode_arrow_ipc, read_ipc
from exporter.records import LABEL_SCHEMA, PREDICTION_FIELDS, Reason
from tests.exporter.decoders.messages import T0, arrow_batch, ipc_stream


def decoded_table(table: pa.Table, now: float = 0.0) -> pa.Table:
    decoded = decode_arrow_ipc(ipc_stream(table), now=now)
    assert not decoded.rejected, decoded.rejected
    [out] = decoded.predictions
    return out


def test_batch_in_contract_columns():
    out = decoded_table(arrow_batch(rows=20, features=4))
    assert list(out.schema)[: len(PREDICTION_FIELDS)] == list(PREDICTION_FIELDS)
    assert out.column_names[len(PREDICTION_FIELDS) :] == ["f.x0", "f.x1", "f.x2", "f.x3"]
    assert out.schema.field("f.x0").type == pa.string() and out.schema.field("f.x1").type == pa.float64()
    assert out.column("prediction_score").to_pylist()[:2] == [0.5, 0.51]


def test_producer_types_are_normalised():
    table = pa.table(
        {
            "model": pa.array(["fraud", "fraud"]).dictionary_encode(),
            "model_version": pa.array([7, 7], pa.int32()),
            "timestamp": pa.array([int(T0 * 1e9), None], pa.timestamp("ns", tz="UTC")),
            "prediction": pa.array([1, 0], pa.int8()),
            "latency_ms": pa.array([12, 13], pa.int64()),
            "f.count": pa.array([3, None], pa.int16()),
            "f.ratio": pa.array([0.5, float("nan")], pa.float32()),
            "f.flag": pa.array([True, False]),
            "f.city": pa.array(["Berlin", None], pa.large_string()),
            "f.empty": pa.nulls(2),
            "extra": ["ignored", "too"],
        }
    )
    out = decoded_table(table, now=99.0)
    assert out.to_pylist()[0] == {
        "model": "fraud",
        "model_version": "7",
        "deployment_slot": None,
        "model_namespace": None,
        "request_id": None,
        "timestamp": T0,
        "prediction_score": 1.0,
        "prediction_class": "1",
        "latency_ms": 12.0,
        "status": None,
        "f.count": 3.0,
        "f.ratio": 0.5,
        "f.flag": "true",
        "f.city": "Berlin",
        "f.empty": None,
    }
    assert out.column("timestamp").to_pylist() == [T0, 99.0]  # null time: now
    assert out.column("f.ratio").to_pylist() == [0.5, None]  # NaN is missing
    assert [out.schema.field(n).type for n in ("f.count", "f.flag", "f.city", "f.empty")] == [
        pa.float64(),
        pa.string(),
        pa.string(),
        pa.float64(),
    ]


@pytest.mark.parametrize(
    ("columns", "score", "klass"),
    [
        ({"prediction": pa.array([0.25])}, 0.25, None),
        ({"prediction": pa.array(["fraud"])}, None, "fraud"),
        ({"prediction": pa.array([True])}, 1.0, "true"),
        ({"prediction_score": pa.array([0.25]), "prediction_class": pa.array(["fraud"])}, 0.25, "fraud"),
        ({"prediction_class": pa.array([3])}, None, "3"),
        ({"prediction": pa.array([{"score": 0.25, "class": "fraud"}])}, 0.25, "fraud"),
        ({}, None, None),
    ],
)
def test_prediction_columns(columns, score, klass):
    row = decoded_table(pa.table({"model": ["m"], **columns})).to_pylist()[0]
    assert (row["prediction_score"], row["prediction_class"]) == (score, klass)


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        (pa.float64(), [T0, None], [T0, 5.0]),
        (pa.int64(), [int(T0), None], [T0, 5.0]),
        (pa.timestamp("s"), [int(T0), None], [T0, 5.0]),
        (pa.timestamp("ms", tz="Europe/Berlin"), [int(T0 * 1000), None], [T0, 5.0]),
        (pa.string(), ["2026-11-28T18:06:00Z", None], [T0, 5.0]),
    ],
)
def test_timestamp_column_forms(kind, values, expected):
    out = decoded_table(pa.table({"model": ["m", "m"], "timestamp": pa.array(values, kind)}), now=5.0)
    assert out.column("timestamp").to_pylist() == expected


def test_missing_timestamp_column_uses_now():
    assert decoded_table(pa.table({"model": ["m"]}), now=7.0).column("timestamp").to_pylist() == [7.0]


def test_rows_with_null_model_or_bad_time_are_rejected_alone_as_one_row_streams():
    table = pa.table(
        {
            "model": ["fraud", None, "", "fraud", "fraud"],
            "timestamp": [T0, T0, T0, math.nan, T0],
            "f.a": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    decoded = decode_arrow_ipc(ipc_stream(table), now=0.0)
    [out] = decoded.predictions
    assert out.column("f.a").to_pylist() == [1.0, 5.0]
    assert [r.reason for r in decoded.rejected] == [Reason.MISSING_FIELD, Reason.MISSING_FIELD, Reason.BAD_TIMESTAMP]
    refused_row = read_ipc(decoded.rejected[0].payload)
    assert refused_row.num_rows == 1 and refused_row.column("f.a").to_pylist() == [2.0]


def test_unparseable_text_timestamp_rejects_its_row():
    decoded = decode_arrow_ipc(
        ipc_stream(pa.table({"model": ["m", "m"], "timestamp": ["soon", "2026-11-28T18:06:00Z"]})), now=0.0
    )
    assert decoded.prediction_rows == 1 and [r.reason for r in decoded.rejected] == [Reason.BAD_TIMESTAMP]


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (pa.table({"f.a": [1.0]}), Reason.MISSING_FIELD),
        (pa.table({"model": [[1]]}), Reason.MISSING_FIELD),
        (pa.table({"model": ["m"], "f.a": pa.array([[1.0]])}), Reason.BAD_FEATURES),
        (pa.table({"model": ["m"], "prediction": pa.array([b"x"])}), Reason.BAD_PREDICTION),
        (pa.table({"model": ["m"], "timestamp": pa.array([[1.0]])}), Reason.BAD_TIMESTAMP),
        (pa.table({"model": ["m"], "latency_ms": ["slow"]}), Reason.MISSING_FIELD),
    ],
)
def test_wrong_column_types_reject_the_message(table, reason):
    message = ipc_stream(table)
    decoded = decode_arrow_ipc(message, now=0.0)
    assert decoded.predictions == [] and [(r.reason, r.payload) for r in decoded.rejected] == [(reason, message)]


@pytest.mark.parametrize(
    "message", [b"\xff\xff\xff\xff", b"\xff\xff\xff\xff\x10\x00\x00\x00garbage", b"ARROW1\x00\x00junk"]
)
def test_invalid_ipc_is_rejected(message):
    decoded = decode_arrow_ipc(message, now=0.0)
    assert [r.reason for r in decoded.rejected] == [Reason.INVALID_ARROW]


def test_truncated_stream_is_rejected():
    message = ipc_stream(arrow_batch(rows=10))
    assert [r.reason for r in decode_arrow_ipc(message[:-40], now=0.0).rejected] == [Reason.INVALID_ARROW]


def test_duplicate_columns_are_rejected():
    table = pa.Table.from_arrays([pa.array(["m"]), pa.array(["n"])], names=["model", "model"])
    assert [r.reason for r in decode_arrow_ipc(ipc_stream(table), now=0.0).rejected] == [Reason.INVALID_ARROW]


def test_arrow_file_format_and_multi_batch_streams_are_read():
    table = arrow_batch(rows=6, features=2)
    out = pa.BufferOutputStream()
    with pa.ipc.new_file(out, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=2):
            writer.write_batch(batch)
    assert decode_arrow_ipc(out.getvalue().to_pybytes(), now=0.0).prediction_rows == 6


def test_one_table_per_model():
    tables = decode_arrow_ipc(ipc_stream(pa.table({"model": ["a", "b", "a"], "f.x": [1, 2, 3]})), now=0.0).predictions
    assert sorted((t.column("model")[0].as_py(), t.column("f.x").to_pylist()) for t in tables) == [
        ("a", [1.0, 3.0]),
        ("b", [2.0]),
    ]


def test_empty_stream_decodes_to_nothing():
    decoded = decode_arrow_ipc(ipc_stream(arrow_batch(rows=0)), now=0.0)
    assert decoded.predictions == [] and decoded.rejected == []


def test_label_batches():
    table = pa.table(
        {
            "model": ["fraud", "fraud", "fraud"],
            "request_id": ["r-1", "r-2", None],
            "label": [1, 0, 1],
            "timestamp": pa.array([int(T0), None, None], pa.timestamp("s", tz="UTC")),
        }
    )
    decoded = decode_arrow_ipc(ipc_stream(table), now=3.0)
    [labels] = decoded.labels
    assert labels.schema == LABEL_SCHEMA
    assert labels.to_pylist() == [
        {"model": "fraud", "request_id": "r-1", "label_value": 1.0, "label_class": "1", "timestamp": T0},
        {"model": "fraud", "request_id": "r-2", "label_value": 0.0, "label_class": "0", "timestamp": 3.0},
    ]
    assert [r.reason for r in decoded.rejected] == [Reason.MISSING_FIELD]
    assert read_ipc(decoded.rejected[0].payload).num_rows == 1
