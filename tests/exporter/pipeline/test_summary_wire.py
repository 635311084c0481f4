"""The model-health-summaries message: exact round trips, routing, and refusals."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

from detectors.profile import ProfileSettings, build_profile
from exporter.demo.synthetic import synthetic_table
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.summary_wire import (
    CONTENT_TYPE_HEADER,
    METADATA_KEY,
    SummaryFormatError,
    SummaryHeader,
    decode_summary,
    encode_summary,
    kafka_headers,
    read_summary_header,
)
from exporter.pipeline.windows import ModelWindows, WindowSpec

SHAPE = {"numeric": 3, "categorical": 2, "drifted": 1}


@pytest.fixture(scope="module")
def profile():
    return build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )


def folded(profile, rows: int = 700, seed: int = 2) -> Bucket:
    table = synthetic_table(rows, seed=seed, drift=True, **SHAPE)
    records = pa.table(
        {
            "model": ["fraud"] * rows,
            "model_version": ["7"] * rows,
            "timestamp": [1_800_000_005.0] * rows,
            "prediction_score": table.column("prediction"),
            "prediction_class": pa.nulls(rows, pa.string()),
            **{f"f.{name}": table.column(name) for name in profile.features},
        }
    )
    store = ModelWindows(profile, [WindowSpec("s", 60, 1)], allowed_lateness=math.inf)
    store.fold_predictions(records)
    ((start, bucket),) = store.buckets["s"].items()
    assert start == 1_800_000_000
    return bucket


def header(**overrides) -> SummaryHeader:
    values = dict(
        model="fraud",
        model_version="7",
        bucket_start=1_800_000_000,
        bucket_seconds=60,
        producer_id="pod-a-1",
        sequence=4,
        records=700,
        model_namespace="prod",
        profile_created_at=1.7e9,
    )
    values.update(overrides)
    return SummaryHeader(**values)


def test_round_trip_is_exact(profile):
    bucket = folded(profile)
    bucket = Bucket(
        bucket.records,
        bucket.features,
        bucket.prediction,
        label=profile.label,
        performance=profile.performance,
        loss=profile.loss,
        labels=12,
    )
    got_header, got = decode_summary(encode_summary(header(), bucket), profile)
    assert got_header == header(labels=12)
    assert got.records == 700 and got.labels == 12
    assert got.features.keys() == bucket.features.keys()
    assert all(got.features[name] == bucket.features[name] for name in bucket.features)
    assert got.prediction == bucket.prediction and got.label == bucket.label and got.loss == bucket.loss
    assert got.performance.to_dict() == bucket.performance.to_dict()


def test_deltas_add_up(profile):
    first, second = folded(profile, rows=400, seed=5), folded(profile, rows=400, seed=6)
    _, a = decode_summary(encode_summary(header(records=400), first), profile)
    _, b = decode_summary(encode_summary(header(records=400, sequence=5), second), profile)
    merged = a + b
    assert merged.records == 800
    assert all(merged.features[n] == first.features[n] + second.features[n] for n in merged.features)
    assert merged.prediction == first.prediction + second.prediction


def test_the_header_alone_routes_a_message(profile):
    value = encode_summary(header(), folded(profile))
    assert read_summary_header(value).key == b"fraud"
    assert read_summary_header(value).sequence == 4
    assert kafka_headers(header()) == (CONTENT_TYPE_HEADER,)


def rewrite_metadata(value: bytes, change) -> bytes:
    table = pa.ipc.open_stream(value).read_all()
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    change(metadata)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=99), r"summary format 99 is not one of \(1, 2\)"),
        (lambda m: m.update(profile_created_at=1.6e9), "another profile"),
        (lambda m: m.update(model="churn"), "summary of churn v7, profile of fraud v7"),
        (lambda m: m.update(bucket_start=1_800_000_001), "multiple"),
        (lambda m: m.update(records=-1), "records must be a non-negative integer"),
        (lambda m: m.update(surprise=1), "unexpected keyword"),
    ],
)
def test_bad_metadata_is_refused(profile, change, message):
    value = rewrite_metadata(encode_summary(header(), folded(profile)), change)
    with pytest.raises(SummaryFormatError, match=message):
        decode_summary(value, profile)


def test_other_bytes_and_other_bins_are_refused(profile):
    with pytest.raises(SummaryFormatError, match="not an Arrow IPC stream"):
        read_summary_header(b'{"model": "fraud"}')
    bucket = folded(profile)
    name = next(iter(bucket.features))
    short = Bucket(bucket.records, {**bucket.features, "ghost": bucket.features[name]})
    with pytest.raises(SummaryFormatError, match="feature 'ghost' is not in the profile"):
        decode_summary(encode_summary(header(), short), profile)
    other = build_profile(
        synthetic_table(2_000, seed=9, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    coarse = build_profile(
        synthetic_table(2_000, seed=9, **SHAPE),
        model="fraud",
        model_version="7",
        created_at=1.7e9,
        prediction="prediction",
        label="label",
        settings=ProfileSettings(fine_bins=100),
    )
    with pytest.raises(SummaryFormatError, match="non-negative counts"):
        decode_summary(encode_summary(header(), folded(coarse)), other)


def test_format_1_is_still_read_and_format_2_is_smaller(profile):
    """A producer not yet upgraded (or pinned to 1 for old consumers) writes version 1."""
    bucket = folded(profile, rows=5_000)
    old = encode_summary(header(records=5_000, format_version=1), bucket)
    new = encode_summary(header(records=5_000), bucket)
    assert read_summary_header(old).format_version == 1 and read_summary_header(new).format_version == 2
    for value in (old, new):
        _, got = decode_summary(value, profile)
        assert got.features == bucket.features and got.prediction == bucket.prediction
    assert len(new) * 3 < len(old)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("counts_values", b"\x01", "count bitmap and the counts disagree|one per bin|positions"),
        ("counts_width", 3, "of width 3"),
        ("counts_form", "zigzag", "stored as 'zigzag'"),
        ("exception_values", b"\xff" * 8, "exception"),
        ("sums", b"\x00", "exact sums do not match their ends"),
        ("missing", -1, "missing must be a non-negative count"),
    ],
)
def test_damaged_packed_rows_are_refused(profile, field, value, message):
    table = pa.ipc.open_stream(encode_summary(header(), folded(profile))).read_all()
    rows = table.to_pylist()
    numeric = next(i for i, row in enumerate(rows) if row["sums"] is not None)
    if field == "exception_values":
        rows[numeric]["exception_at"] = b"\x00\x00\x00\x00"
    rows[numeric][field] = value
    sink = pa.BufferOutputStream()
    damaged = pa.Table.from_pylist(rows, schema=table.schema)
    with pa.ipc.new_stream(sink, damaged.schema) as writer:
        writer.write_table(damaged)
    with pytest.raises(SummaryFormatError, match=message):
        decode_summary(sink.getvalue().to_pybytes(), profile)
