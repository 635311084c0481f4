from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

from exporter.decoders.native_json import decode_native_json
from exporter.records import LABEL_SCHEMA, PREDICTION_COLUMNS, Reason
from tests.exporter.decoders.messages import T0, native_record, ndjson


def one_row(decoded) -> dict:
    assert not decoded.rejected, decoded.rejected
    [table] = decoded.predictions
    assert table.num_rows == 1
    return table.to_pylist()[0]


def test_design_example_record_decodes_to_the_contract_columns():
    message = json.dumps(
        {
            "model": "fraud",
            "model_version": "7",
            "request_id": "r-1",
            "timestamp": 1795889160.5,
            "features": {"amount": 12.5, "country": "DE"},
            "prediction": 0.93,
            "latency_ms": 12.3,
            "status": "ok",
        }
    ).encode()
    decoded = decode_native_json(message, now=0.0)
    [table] = decoded.predictions
    assert tuple(table.column_names) == (*PREDICTION_COLUMNS, "f.amount", "f.country")
    assert table.schema.field("f.amount").type == pa.float64()
    assert table.schema.field("f.country").type == pa.string()
    assert table.to_pylist() == [
        {
            "model": "fraud",
            "model_version": "7",
            "deployment_slot": None,
            "model_namespace": None,
            "request_id": "r-1",
            "timestamp": 1795889160.5,
            "prediction_score": 0.93,
            "prediction_class": None,
            "latency_ms": 12.3,
            "status": "ok",
            "f.amount": 12.5,
            "f.country": "DE",
        }
    ]


def test_ndjson_bad_line_rejects_only_that_line():
    good = [native_record(0), native_record(1)]
    message = json.dumps(good[0]).encode() + b"\n{not json\n" + json.dumps(good[1]).encode() + b"\n\n"
    decoded = decode_native_json(message, now=0.0, headers=[("source", b"sidecar")])
    assert decoded.prediction_rows == 2
    [rejected] = decoded.rejected
    assert rejected.reason is Reason.INVALID_JSON
    assert rejected.payload == b"{not json"
    assert rejected.headers == (("source", b"sidecar"),)


def test_ndjson_batch_keeps_record_order_and_builds_one_table():
    records = [native_record(i) for i in range(50)]
    [table] = decode_native_json(ndjson(records), now=0.0).predictions
    assert table.column("request_id").to_pylist() == [f"r-{i}" for i in range(50)]
    assert table.num_columns == len(PREDICTION_COLUMNS) + 20


def test_json_array_of_records_is_a_batch_and_bad_elements_are_reencoded():
    message = json.dumps([native_record(0), {"features": {}}, 5]).encode()
    decoded = decode_native_json(message, now=0.0)
    assert decoded.prediction_rows == 1
    assert [r.reason for r in decoded.rejected] == [Reason.MISSING_FIELD, Reason.INVALID_JSON]
    assert json.loads(decoded.rejected[0].payload) == {"features": {}}


def test_each_model_gets_its_own_table():
    records = [native_record(0), native_record(1, model="churn", features=2), native_record(2)]
    tables = decode_native_json(ndjson(records), now=0.0).predictions
    assert sorted((t.column("model")[0].as_py(), t.num_rows) for t in tables) == [("churn", 1), ("fraud", 2)]
    churn = next(t for t in tables if t.column("model")[0].as_py() == "churn")
    assert churn.column_names[-2:] == ["f.x0", "f.x1"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"features": {"a": 1}}, Reason.MISSING_FIELD),
        ({"model": "", "features": {}}, Reason.MISSING_FIELD),
        ({"model": None}, Reason.MISSING_FIELD),
        ({"model": ["fraud"]}, Reason.MISSING_FIELD),
        ({"model": "m", "model_version": {"v": 1}}, Reason.MISSING_FIELD),
        ({"model": "m", "latency_ms": "fast"}, Reason.MISSING_FIELD),
        ({"model": "m", "features": [1, 2]}, Reason.BAD_FEATURES),
        ({"model": "m", "prediction": {"score": "high"}}, Reason.BAD_PREDICTION),
        ({"model": "m", "prediction": ["a", "b"]}, Reason.BAD_PREDICTION),
        ({"model": "m", "timestamp": "yesterday"}, Reason.BAD_TIMESTAMP),
        ({"model": "m", "timestamp": True}, Reason.BAD_TIMESTAMP),
    ],
)
def test_invalid_records_are_rejected_with_their_reason(record, reason):
    message = json.dumps(record).encode()
    decoded = decode_native_json(message, now=0.0)
    assert decoded.predictions == []
    assert [(r.reason, r.payload) for r in decoded.rejected] == [(reason, message)]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1795889160.5, 1795889160.5),
        (1795889160, 1795889160.0),
        ("2026-11-28T18:06:00Z", T0),
        ("2026-11-28T18:06:00.25z", T0 + 0.25),
        ("2026-11-28T20:06:00+02:00", T0),
        ("2026-11-28T18:06:00.123456789Z", T0 + 0.123456),
        ("2026-11-28T18:06:00", T0),  # no offset: read as UTC
        ("2026-11-28 18:06:00Z", T0),
        (None, 42.0),
    ],
)
def test_timestamp_forms(timestamp, expected):
    record = {"model": "m", "timestamp": timestamp}
    assert one_row(decode_native_json(json.dumps(record).encode(), now=42.0))["timestamp"] == pytest.approx(expected)


def test_missing_timestamp_uses_the_callers_now():
    assert one_row(decode_native_json(b'{"model": "m"}', now=1234.5))["timestamp"] == 1234.5


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_timestamp_is_rejected(literal):
    decoded = decode_native_json(b'{"model": "m", "timestamp": ' + literal + b"}", now=0.0)
    assert [r.reason for r in decoded.rejected] == [Reason.BAD_TIMESTAMP]


@pytest.mark.parametrize(
    ("prediction", "score", "klass"),
    [
        (0.93, 0.93, None),
        ("fraud", None, "fraud"),
        ({"score": 0.93, "class": "fraud"}, 0.93, "fraud"),
        ({"score": 0.93}, 0.93, None),
        ({"class": 1}, None, "1"),
        (1, 1.0, "1"),
        (True, 1.0, "true"),
        (None, None, None),
        ([0.2, 0.8], 0.8, "1"),
        ([0.7, 0.1, 0.2], 0.7, "0"),
    ],
)
def test_prediction_forms(prediction, score, klass):
    row = one_row(decode_native_json(json.dumps({"model": "m", "prediction": prediction}).encode(), now=0.0))
    assert (row["prediction_score"], row["prediction_class"]) == (score, klass)


def test_nan_prediction_score_and_latency_are_null():
    row = one_row(decode_native_json(b'{"model": "m", "prediction": NaN, "latency_ms": NaN}', now=0.0))
    assert row["prediction_score"] is None and row["latency_ms"] is None


def test_feature_typing_over_a_batch():
    records = [
        {
            "model": "m",
            "features": {"num": 1, "mixed": 1, "flag": True, "cat": "DE", "gap": None, "nan": 1.5, "sparse": 2},
        },
        {
            "model": "m",
            "features": {"num": 2.5, "mixed": "x", "flag": False, "cat": "FR", "gap": None, "nan": float("nan")},
        },
        {"model": "m", "features": {"num": None, "mixed": 2.5, "flag": None, "cat": None, "gap": None, "nan": 3}},
    ]
    [table] = decode_native_json(ndjson(records), now=0.0).predictions
    types = {name: table.schema.field(name).type for name in table.column_names if name.startswith("f.")}
    assert types == {
        "f.num": pa.float64(),
        "f.mixed": pa.string(),
        "f.flag": pa.string(),
        "f.cat": pa.string(),
        "f.gap": pa.float64(),
        "f.nan": pa.float64(),
        "f.sparse": pa.float64(),
    }
    assert table.column("f.num").to_pylist() == [1.0, 2.5, None]
    assert table.column("f.mixed").to_pylist() == ["1", "x", "2.5"]
    assert table.column("f.flag").to_pylist() == ["true", "false", None]
    assert table.column("f.nan").to_pylist() == [1.5, None, 3.0]  # NaN is a missing value
    assert table.column("f.sparse").to_pylist() == [2.0, None, None]


def test_booleans_among_numbers_make_a_text_feature():
    [table] = decode_native_json(
        ndjson([{"model": "m", "features": {"a": 1.5}}, {"model": "m", "features": {"a": True}}]), now=0.0
    ).predictions
    assert table.column("f.a").to_pylist() == ["1.5", "true"]


def test_infinity_stays_a_number_and_huge_integers_do_not_break_the_batch():
    message = ndjson(
        [{"model": "m", "features": {"a": 1e308 * 10, "b": 2**80}}, {"model": "m", "features": {"a": 1, "b": 1}}]
    )
    [table] = decode_native_json(message, now=0.0).predictions
    assert table.column("f.a").to_pylist() == [math.inf, 1.0]
    assert table.column("f.b").to_pylist() == [float(2**80), 1.0]


def test_nested_feature_value_rejects_only_its_row():
    lines = [native_record(0), native_record(1), native_record(2)]
    lines[1]["features"]["x1"] = {"nested": True}
    message = ndjson(lines)
    decoded = decode_native_json(message, now=0.0)
    assert decoded.predictions[0].column("request_id").to_pylist() == ["r-0", "r-2"]
    [rejected] = decoded.rejected
    assert rejected.reason is Reason.BAD_FEATURES
    assert json.loads(rejected.payload)["request_id"] == "r-1"


def test_lone_surrogates_cost_a_character_not_the_batch():
    message = b'{"model": "m", "status": "\\ud800", "features": {"c\\udfff": "\\ud83d"}}'
    row = one_row(decode_native_json(message, now=0.0))
    assert row["status"] == "\ufffd"
    assert row["f.c\ufffd"] == "\ufffd"


def test_labels_on_the_labels_topic_and_by_shape():
    message = ndjson(
        [
            {"model": "fraud", "request_id": "r-1", "label": 1, "timestamp": T0},
            {"model": "fraud", "request_id": "r-2", "label": 1.0},
            {"model": "fraud", "request_id": "r-3", "label": 2.5},
            {"model": "fraud", "request_id": "r-4", "label": False},
            {"model": "fraud", "request_id": "r-5", "label": "fraud"},
        ]
    )
    for decoded in (decode_native_json(message, now=9.0), decode_native_json(message, now=9.0, labels_only=True)):
        assert decoded.predictions == [] and decoded.rejected == []
        [table] = decoded.labels
        assert table.schema == LABEL_SCHEMA
        assert [(r["label_value"], r["label_class"], r["timestamp"]) for r in table.to_pylist()] == [
            (1.0, "1", T0),
            (1.0, "1", 9.0),
            (2.5, "2.5", 9.0),
            (0.0, "false", 9.0),
            (None, "fraud", 9.0),
        ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"model": "m", "label": 1}, Reason.MISSING_FIELD),
        ({"request_id": "r", "label": 1}, Reason.MISSING_FIELD),
        ({"model": "m", "request_id": "r", "label": None}, Reason.BAD_LABEL),
        ({"model": "m", "request_id": "r", "label": [1]}, Reason.BAD_LABEL),
    ],
)
def test_bad_labels_are_rejected(record, reason):
    decoded = decode_native_json(json.dumps(record).encode(), now=0.0, labels_only=True)
    assert decoded.labels == [] and [r.reason for r in decoded.rejected] == [reason]


def test_a_record_with_label_and_features_is_a_prediction_outside_the_labels_topic():
    row = one_row(decode_native_json(b'{"model": "m", "features": {"a": 1}, "label": 1}', now=0.0))
    assert row["f.a"] == 1.0


@pytest.mark.parametrize("message", [b"{", b'"text"', b"[1, 2", b"{}{}", b"\xff\xfe{"])
def test_broken_single_documents_are_one_rejection(message):
    decoded = decode_native_json(message, now=0.0)
    assert decoded.predictions == []
    assert len(decoded.rejected) == 1 and decoded.rejected[0].reason is Reason.INVALID_JSON


def test_multiline_garbage_is_one_rejection_not_one_per_line():
    decoded = decode_native_json(b"{\n  not json at all\n  nor this\n", now=0.0)
    assert [r.reason for r in decoded.rejected] == [Reason.INVALID_JSON]


def test_deep_nesting_is_refused_not_raised():
    decoded = decode_native_json(b"[" * 100_000, now=0.0)
    assert [r.reason for r in decoded.rejected] == [Reason.INVALID_JSON]
