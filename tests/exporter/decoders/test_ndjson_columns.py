"""The column-wise NDJSON reading gives exactly what the line-by-line reading gives."""

from __future__ import annotations

import json
import string

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.decoders import native_json
from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.ndjson_columns import read_predictions
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Decoded
from tests.exporter.decoders.messages import native_record, ndjson

TOPIC = "model-predictions"

words = st.text(alphabet=string.ascii_letters + "-_ ", max_size=4)
numbers = st.one_of(
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.integers(-5, 5),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e300, 5e-324]),
)
feature_values = st.one_of(numbers, st.booleans(), words, st.none(), st.sampled_from([{"x": 1}, [1], "é"]))
feature_maps = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), feature_values, max_size=4)
records = st.fixed_dictionaries(
    {"model": st.sampled_from(["fraud", "fraud", "fraud", "churn", "", 7])},
    optional={
        "model_version": st.sampled_from(["7", 7, None, 7.5, True]),
        "request_id": st.one_of(words, st.none(), st.integers(0, 9)),
        "timestamp": st.one_of(
            st.floats(1.7e9, 1.8e9),
            st.integers(0, 2**40),
            st.none(),
            st.sampled_from(["2026-11-28T18:06:00Z", "2026-11-28T18:06:00.5+01:00", "yesterday", float("nan"), True]),
        ),
        "prediction": st.one_of(
            st.floats(0, 1),
            st.integers(0, 3),
            st.booleans(),
            words,
            st.none(),
            st.sampled_from([1.0, [0.2, 0.8], {"score": 0.5, "class": "x"}, float("nan")]),
        ),
        "latency_ms": st.one_of(
            st.floats(0, 100), st.integers(0, 100), st.none(), st.sampled_from(["fast", float("nan")])
        ),
        "status": st.sampled_from(["ok", "error", None, 5]),
        "features": st.one_of(feature_maps, feature_maps, st.none(), st.sampled_from([[1, 2], 3])),
        "label": st.sampled_from([1, "x"]),
        "extra": st.one_of(st.integers(), words, st.sampled_from([{"deep": [1]}])),
    },
)
# Mostly well-formed records of one model, so that most messages take the column path.
good_records = st.fixed_dictionaries(
    {"model": st.just("fraud")},
    optional={
        "model_version": st.sampled_from(["7", 7, None]),
        "request_id": words,
        "timestamp": st.one_of(st.floats(1.7e9, 1.8e9), st.integers(0, 2**40), st.none()),
        "prediction": st.one_of(st.floats(0.01, 0.99), st.booleans(), words),
        "latency_ms": st.one_of(st.floats(0, 100), st.integers(0, 100), st.none()),
        "status": st.sampled_from(["ok", "error", None]),
        "features": st.dictionaries(
            st.sampled_from(["a", "b", "c", "d"]), st.one_of(numbers, st.none(), words), max_size=4
        ),
    },
)
messages = st.one_of(
    st.lists(st.lists(records, min_size=1, max_size=6), min_size=1, max_size=4),
    st.lists(st.lists(good_records, min_size=2, max_size=8), min_size=1, max_size=4),
)


def encode(batch: list[dict], trailing: bool) -> bytes:
    text = "\n".join(json.dumps(record) for record in batch)
    return (text + ("\n" if trailing else "")).encode()


def decode(values: list[bytes], columnar: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Decoded, list[WireFormat]]:
    with monkeypatch.context() as patch:
        if not columnar:
            patch.setattr(native_json, "read_predictions", lambda value, now: None)
        batch = decode_batch([WireMessage(v, TOPIC) for v in values], 100.0, Joiners())
    return batch.decoded, batch.formats


def same(a: Decoded, b: Decoded) -> None:
    assert len(a.predictions) == len(b.predictions)
    for x, y in zip(a.predictions, b.predictions):
        assert x.schema == y.schema
        assert x.equals(y), (x.to_pylist(), y.to_pylist())
    assert [t.to_pylist() for t in a.labels] == [t.to_pylist() for t in b.labels]
    key = lambda r: (r.payload, r.reason.value, r.detail)  # noqa: E731 - order differs only where a batch mixes both ways
    assert sorted(a.rejected, key=key) == sorted(b.rejected, key=key)


@settings(max_examples=300, deadline=None)
@given(messages, st.booleans())
def test_columnwise_reading_equals_line_by_line(batches, trailing):
    monkeypatch = pytest.MonkeyPatch()
    values = [encode(batch, trailing) for batch in batches]
    fast, fast_formats = decode(values, True, monkeypatch)
    slow, slow_formats = decode(values, False, monkeypatch)
    assert fast_formats == slow_formats
    same(fast, slow)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r,
        lambda r: {**r, "model_version": 7},
        lambda r: {**r, "timestamp": "2026-11-28T18:06:00Z"},
        lambda r: {**r, "prediction": "fraud"},
        lambda r: {**r, "prediction": True},
        lambda r: {**r, "features": {**r["features"], "x0": None}},
    ],
)
def test_well_formed_batches_take_the_column_path(change, monkeypatch):
    records = [change(native_record(i, 5)) for i in range(20)]
    assert read_predictions(ndjson(records), 0.0) is not None
    fast, _ = decode([ndjson(records)], True, monkeypatch)
    slow, _ = decode([ndjson(records)], False, monkeypatch)
    same(fast, slow)


@pytest.mark.parametrize(
    "message",
    [
        b'{"model": "m", "prediction": 1}\n{"model": "m", "prediction": 0.5}\n',  # 1 is also the class "1"
        b'{"model": "m"}\n\n{"model": "m"}\n',  # a blank line
        b'{"model": "m"} {"model": "m"}\n{"model": "m"}\n',  # two on a line
        b'{"model": "m", "a":\n1}\n{"model": "m"}\n',  # one object over two lines
        b'{"model": "m"}\nnull\n',  # not an object (pyarrow 25 crashes on a leading null)
        b'null\n{"model": "m"}\n',
        b'{"model": "m", "label": 1}\n{"model": "m"}\n',
        b'{"model": "m", "x": "\\ud800"}\n{"model": "m"}\n',
        '{"model": "m", "x": "é"}\n{"model": "m"}\n'.encode(),
        b'{"model": "m", "model": "n"}\n{"model": "m"}\n',
        b'{"model": "m"}\n{"model": "n"}\n',  # two models
        b'{"model": "m", "features": {"a": {"x": 1}}}\n{"model": "m"}\n',
        b'{"model": "m", "timestamp": NaN}\n{"model": "m"}\n',
    ],
)
def test_messages_that_need_a_closer_look_go_line_by_line(message, monkeypatch):
    assert read_predictions(message, 0.0) is None
    fast, fast_formats = decode([message], True, monkeypatch)
    slow, slow_formats = decode([message], False, monkeypatch)
    assert fast_formats == slow_formats
    same(fast, slow)


def test_batch_of_column_and_line_read_messages_types_features_as_one(monkeypatch):
    numeric = ndjson([{"model": "m", "features": {"a": 1, "b": None}}, {"model": "m", "features": {"a": 2.5}}])
    text = ndjson([{"model": "m", "features": {"a": "x", "c": True}}, {"model": "m", "features": {"b": "y"}}])
    broken = ndjson([{"model": "m", "features": {"a": 3}}]) + b"{not json\n" + ndjson([{"model": "m"}])
    for values in ([numeric, text], [text, numeric], [numeric, broken, text], [numeric, numeric]):
        fast, fast_formats = decode(values, True, monkeypatch)
        slow, slow_formats = decode(values, False, monkeypatch)
        assert fast_formats == slow_formats
        same(fast, slow)
    [table] = decode([numeric, text], True, monkeypatch)[0].predictions
    assert table.column("f.a").to_pylist() == ["1", "2.5", "x", None]  # text wins, numbers as written


def test_null_only_feature_takes_the_type_of_the_batch(monkeypatch):
    nulls = ndjson([{"model": "m", "features": {"a": None}}, {"model": "m", "features": {}}])
    text = ndjson([{"model": "m", "features": {"a": "x"}}, {"model": "m", "features": {"a": "y"}}])
    [table] = decode([nulls, text], True, monkeypatch)[0].predictions
    assert table.schema.field("f.a").type == pa.string()
    [alone] = decode([nulls], True, monkeypatch)[0].predictions
    assert alone.schema.field("f.a").type == pa.float64()
