"""Partial summaries survive the summaries topic exactly; anything else is refused with a reason."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from detectors.profile import summary_counts
from exporter.aggregator.scaleout import routing, wire
from exporter.aggregator.scaleout.join_shards import combine_reports, split_join
from exporter.config.aggregator import AggregatorKafkaConfig
from exporter.kafka import Message
from exporter.pipeline.buckets import Joined, performance_buckets
from exporter.pipeline.packed import BucketLayout, PackedBucket, unpack
from exporter.pipeline.partial import JoinReport, join_rows, label_rows
from exporter.pipeline.snapshot import HistogramState
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.profiles import load_profile
from exporter.records import LABEL_SCHEMA
from tests.exporter.aggregator.scaleout.traffic import write_profiles


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    paths = write_profiles(tmp_path_factory.mktemp("profiles"))
    loaded = load_profile(paths[("fraud", "7")])
    _PROFILES[:] = [loaded]
    return loaded


_PROFILES: list = []  # the module's profile, for unpacking what format 3 sends packed


def folded(profile) -> wire.ModelPartial:
    """A partial as stage 1 makes it: predictions and labels folded into 30 s slots."""
    rows = 200
    table = pa.table(
        {
            "model": ["fraud"] * rows,
            "model_version": ["7"] * rows,
            "model_namespace": [None] * rows,
            "request_id": [f"r{i}" for i in range(rows)],
            "timestamp": [1000.0 + i for i in range(rows)],
            "prediction_score": [i / rows for i in range(rows)],
            "prediction_class": [None] * rows,
            "latency_ms": [5.0] * rows,
            "status": ["ok"] * rows,
            "f.num_00": [float(i % 7) if i % 11 else None for i in range(rows)],
            "f.cat_0": [f"c0_0{i % 4}" for i in range(rows)],
        }
    )
    labels = pa.table(
        {
            "model": ["fraud"] * 50,
            "request_id": [f"r{i}" for i in range(50)],
            "label_value": [1.0] * 50,
            "label_class": ["1"] * 50,
            "timestamp": [1300.0] * 50,
        },
        schema=LABEL_SCHEMA,
    )
    slot = [WindowSpec("slot", 30, 1)]
    predictions, label_store = ModelWindows(profile, slot, math.inf), ModelWindows(profile, slot, math.inf)
    predictions.fold_predictions(table)
    label_store.fold_labels(labels)
    version = wire.VersionPartial(
        profile_created_at=profile.metadata.created_at,
        predictions=dict(predictions.buckets["slot"]),
        labels=dict(label_store.buckets["slot"]),
        errors=3,
        latency=HistogramState((0.01, 0.1), (150, 190, 200), 1.5),
        newest={("predictions", 1170): 1199.0, ("labels", 1290): 1300.0},
        join=join_rows(
            "fraud",
            pa.table(
                {
                    "model_version": ["7"] * rows,
                    "request_id": table["request_id"],
                    "timestamp": table["timestamp"],
                    "prediction_score": table["prediction_score"],
                    "prediction_class": table["prediction_class"],
                }
            ),
        ),
    )
    return wire.ModelPartial("fraud", 30, {"7": version}, label_rows("fraud", labels))


def bucket_values(buckets):
    """Every number of every bucket; packed buckets (format 3 off the wire) unpacked first."""
    out = {}
    for start, bucket in buckets.items():
        if isinstance(bucket, PackedBucket):
            bucket = unpack(bucket, BucketLayout.of(_PROFILES[0]))
        out[(start, "records")] = (bucket.records, bucket.labels)
        for name, summary in bucket.features.items():
            out[(start, name)] = {
                k: list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
                for k, v in summary_counts(summary).items()
            }
        for part in ("prediction", "label"):
            summary = getattr(bucket, part)
            if summary is not None:
                out[(start, part)] = {
                    k: list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
                    for k, v in summary_counts(summary).items()
                }
    return out


def without_ids(table: pa.Table) -> list[dict]:
    return table.drop_columns(["request_id"]).to_pylist()


@pytest.mark.parametrize("format_version", sorted(wire.WIRE_FORMATS))
def test_model_partial_round_trip(profile, format_version):
    """Every format this build writes comes back the same; from format 3 on the join rows
    travel as request keys (the ids stay behind), before it as ids (keyed when read)."""
    partial = folded(profile)
    value = wire.encode_model_partial(partial, format_version=format_version, profile_for={"7": profile}.get)
    back = wire.decode_model_partial(value, {"7": profile}.get)
    sent, got = partial.versions["7"], back.versions["7"]
    assert back.model == "fraud" and back.slot_seconds == 30
    assert bucket_values(got.predictions) == bucket_values(sent.predictions)
    assert bucket_values(got.labels) == bucket_values(sent.labels)
    assert len(got.predictions) == 7 and got.records == 200  # 200 s of records in 30 s slots
    assert (got.errors, got.latency, got.newest) == (3, sent.latency, sent.newest)
    assert without_ids(got.join) == without_ids(sent.join)
    assert without_ids(back.labels) == without_ids(partial.labels)
    if format_version >= wire.KEYED_FORMAT:
        assert got.join.column("request_id").null_count == got.join.num_rows
    else:
        assert got.join.to_pylist() == sent.join.to_pylist() and back.labels.to_pylist() == partial.labels.to_pylist()
    assert len(value) < 40_000  # zstd: mostly-empty fine histograms cost little


def test_a_partial_folded_against_another_profile_is_refused(profile):
    value = wire.encode_model_partial(folded(profile), profile_for={"7": profile}.get)
    newer = replace(profile, metadata=replace(profile.metadata, created_at=profile.metadata.created_at + 1))
    with pytest.raises(wire.WireError) as refused:
        wire.decode_model_partial(value, {"7": newer}.get)
    assert refused.value.reason == "profile_mismatch"
    with pytest.raises(wire.WireError) as refused:
        wire.decode_model_partial(value, {"8": profile}.get)
    assert refused.value.reason == "unknown_model"


@given(st.binary(max_size=200))
def test_garbage_is_refused_never_raised(data):
    for value in (data, wire.MAGIC + data):
        with pytest.raises(wire.WireError) as refused:
            wire.decode_model_partial(value, lambda version: None)
        assert refused.value.reason in ("invalid_summary", "unknown_model")
        with pytest.raises(wire.WireError):
            wire.decode_pipeline_partial(value)


def test_truncated_partial_is_refused(profile):
    value = wire.encode_model_partial(folded(profile), profile_for={"7": profile}.get)
    for cut in (len(value) // 3, len(value) - 5):
        with pytest.raises(wire.WireError) as refused:
            wire.decode_model_partial(value[:cut], {"7": profile}.get)
        assert refused.value.reason == "invalid_summary"


def message(summary: wire.SummaryRange, headers=None) -> Message:
    return Message(
        "model-health-summaries",
        0,
        0,
        summary.key.encode(),
        b"",
        tuple(headers if headers is not None else summary.headers()),
    )


def test_range_headers_round_trip():
    summary = wire.SummaryRange("model", "fraud", "model-predictions", 3, 10, 25, 1234.5)
    assert wire.SummaryRange.of(message(summary)) == summary
    assert summary.source == ("model-predictions", 3)
    assert wire.SummaryRange.of(message(summary, headers=())) is None  # another producer's message


@pytest.mark.parametrize(
    "broken",
    [
        {"model-health-summary-format": str(wire.FORMAT_VERSION + 1).encode()},  # a format this build does not read
        {"model-health-summary-kind": b"other"},
        {"model-health-range-end": b"5"},  # ends before it starts
        {"model-health-range-start": b"x"},
        {"model-health-emitted-at": b"nan"},
    ],
)
def test_bad_range_headers_are_refused(broken):
    headers = dict(wire.SummaryRange("model", "fraud", "t", 0, 10, 25, 1.0).headers()) | broken
    with pytest.raises(wire.WireError) as refused:
        wire.SummaryRange.of(Message("s", 0, 0, b"fraud", b"", tuple(headers.items())))
    assert refused.value.reason == "invalid_summary"


def test_pipeline_partial_round_trip():
    partial = wire.PipelinePartial(
        {("model-predictions", "ndjson"): 40, ("model-predictions", "json"): 2},
        {("model-predictions", "invalid_json"): 1},
        {"model-predictions": 3},
    )
    assert wire.decode_pipeline_partial(wire.encode_pipeline_partial(partial)) == partial


def test_a_pipeline_partial_from_before_the_duplicate_count_reads_as_none_dropped():
    old = json.dumps({"format": wire.FORMAT_VERSION, "consumed": [["t", "json", 2]], "rejected": []}).encode()
    assert wire.decode_pipeline_partial(old) == wire.PipelinePartial({("t", "json"): 2}, {}, {})


def test_a_big_partial_splits_into_parts_that_add_up(profile):
    partial = folded(profile)
    parts = wire.split_model_partial(partial, max_summaries=10, max_rows=60)
    assert len(parts) > 3
    assert [bucket_values(p.versions["7"].predictions) for p in parts] == [
        bucket_values(p.versions["7"].predictions) for p in wire.split_model_partial(partial, 10, 60)
    ]  # deterministic
    merged_predictions, merged_labels, joins, labels, newest = {}, {}, 0, 0, {}
    for piece in parts:
        back = wire.decode_model_partial(
            wire.encode_model_partial(piece, profile_for={"7": profile}.get), {"7": profile}.get
        )
        version = back.versions["7"]
        assert not set(version.predictions) & set(merged_predictions)  # each bucket in one part
        merged_predictions.update(version.predictions)
        merged_labels.update(version.labels)
        newest.update(version.newest)
        joins += version.join.num_rows if version.join is not None else 0
        labels += back.labels.num_rows if back.labels is not None else 0
        assert joins <= 60 * len(parts)
    assert bucket_values(merged_predictions) == bucket_values(partial.versions["7"].predictions)
    assert bucket_values(merged_labels) == bucket_values(partial.versions["7"].labels)
    assert (joins, labels, newest) == (200, 50, partial.versions["7"].newest)
    first = wire.decode_model_partial(
        wire.encode_model_partial(parts[0], profile_for={"7": profile}.get), {"7": profile}.get
    ).versions["7"]
    assert (first.errors, first.latency) == (3, partial.versions["7"].latency)  # counters once, in part 0
    assert all(p.versions["7"].errors == 0 and p.versions["7"].latency is None for p in parts[1:])
    assert wire.split_model_partial(partial) == [partial]  # small enough: one message


# ---------------------------------------------------------------------------------------------
# Join shards.


def test_split_join_sends_each_row_to_the_shard_its_key_names(profile):
    """Stage 1 with ``kafka.join_shards``: the owner's partial keeps everything but the join's
    rows; every join and label row goes to exactly one shard, the one its request key names."""
    partial = folded(profile)
    rest, shards = split_join(partial, 4)
    assert rest.labels is None and rest.versions["7"].join is None
    assert bucket_values(rest.versions["7"].predictions) == bucket_values(partial.versions["7"].predictions)
    assert rest.versions["7"].errors == 3 and set(shards) == {0, 1, 2, 3}
    sent = sorted(partial.versions["7"].join.column("request_key").to_pylist())
    got = sorted(k for s in shards.values() for k in s.versions["7"].join.column("request_key").to_pylist())
    assert got == sent
    labels = sorted(
        k for s in shards.values() if s.labels is not None for k in s.labels.column("request_key").to_pylist()
    )
    assert labels == sorted(partial.labels.column("request_key").to_pylist())
    for shard, part in shards.items():
        keys = part.versions["7"].join.column("request_key").to_numpy()
        assert (routing.join_shards_of(keys, 4) == shard).all()
        assert part.versions["7"].predictions == {} and part.versions["7"].errors == 0


def _report(profile, key: str, offset: int, pairs: int) -> wire.ShardReport:
    joined = Joined(
        timestamps=1000.0 + np.arange(pairs, dtype=np.float64),
        labels=np.array(["1", "0"] * (pairs // 2), dtype=object),
        scores=np.linspace(0, 1, pairs),
        classes=None,
    )
    performance = performance_buckets(profile, joined, 30)
    assert performance  # the profile is a classifier's: pairs fold into performance
    model, shard = routing.join_shard_of(key)
    version = wire.VersionPartial(profile.metadata.created_at, performance=performance)
    partial = wire.ModelPartial(model, 30, {"7": version}, join_reports=[JoinReport(shard, pairs, 2, 7)])
    return wire.ShardReport(key, offset, 1234.5 + offset, partial)


def test_join_shard_reports_round_trip(profile):
    reports = [_report(profile, "join:0:fraud", 11, 40), _report(profile, "join:2:fraud", 11, 20)]
    reports.append(_report(profile, "join:0:fraud", 14, 60))
    value = wire.encode_reports(reports, lambda model, version: profile)
    back = wire.decode_reports(value, lambda model, version: profile if (model, version) == ("fraud", "7") else None)
    assert [(r.key, r.offset, r.emitted_at) for r in back] == [(r.key, r.offset, r.emitted_at) for r in reports]
    for sent, got in zip(reports, back):
        assert got.partial.join_reports == sent.partial.join_reports and got.partial.model == "fraud"
        want, have = sent.partial.versions["7"].performance, got.partial.versions["7"].performance
        assert sorted(want) == sorted(have)
        for start in want:
            assert have[start].performance == want[start].performance
            assert unpack(have[start], BucketLayout.of(profile)).loss == want[start].loss
    with pytest.raises(wire.WireError) as refused:
        wire.decode_reports(value, lambda model, version: None)
    assert refused.value.reason == "unknown_model"


@given(st.binary(max_size=200))
def test_garbage_reports_are_refused_never_raised(data):
    for value in (data, wire.MAGIC + data):
        with pytest.raises(wire.WireError):
            wire.decode_reports(value, lambda model, version: None)


def test_join_shards_need_the_keyed_format():
    with pytest.raises(ValidationError, match="join_shards"):
        AggregatorKafkaConfig(join_shards=4, summaries_format=2)
    assert AggregatorKafkaConfig(join_shards=4).join_shards == 4


def test_a_report_of_paired_records_round_trips_and_reports_combine(profile):
    """A join shard sends the records its KServe/Seldon pairing made as a report too: slot
    buckets with their newest event times, errors and latency. The owner adds a message's
    reports of one model together: slots per (version, role, start), counters summed."""
    records = folded(profile)
    part = records.versions["7"]
    paired = wire.VersionPartial(
        part.profile_created_at, part.predictions, {}, part.errors, part.latency, dict(part.newest)
    )
    paired.newest.pop(("labels", 1290))
    reports = [
        wire.ShardReport("paired:fraud", 3, 1500.0, wire.ModelPartial("fraud", 30, {"7": paired})),
        _report(profile, "join:1:fraud", 3, 40),
        wire.ShardReport("paired:fraud", 9, 1501.0, wire.ModelPartial("fraud", 30, {"7": paired})),
    ]
    back = wire.decode_reports(wire.encode_reports(reports, lambda m, v: profile), lambda m, v: profile)
    got = back[0].partial.versions["7"]
    assert bucket_values(got.predictions) == bucket_values(part.predictions)
    assert (got.errors, got.latency, got.newest) == (3, part.latency, paired.newest)
    (combined,) = combine_reports(back, lambda m, v: BucketLayout.of(profile))
    total = combined.versions["7"]
    assert total.errors == 6 and total.latency == part.latency + part.latency
    assert combined.join_reports == reports[1].partial.join_reports
    doubled = {key: value for key, value in bucket_values(part.predictions).items() if key[1] == "records"}
    assert {k: v for k, v in bucket_values(total.predictions).items() if k[1] == "records"} == {
        k: (2 * a, 2 * b) for k, (a, b) in doubled.items()
    }
    assert set(total.performance) == set(reports[1].partial.versions["7"].performance)
