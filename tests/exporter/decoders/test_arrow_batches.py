"""Arrow messages decoded as a batch give exactly what each gives decoded alone."""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.records import Decoded
from tests.exporter.decoders.messages import T0, ipc_stream

TOPIC = "model-predictions"

models = st.sampled_from(["fraud", "fraud", "fraud", "churn", "", None])
floats = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([math.nan, math.inf, None, 0.5]))
times = st.one_of(st.floats(T0 - 1e4, T0 + 1e4), st.sampled_from([math.nan, None, math.inf]))
text_times = st.sampled_from(["2026-11-28T18:06:00Z", "2026-11-28T18:06:00.5+01:00", "soon", None])
columns = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.sampled_from(["float", "text", "ns"]),
        "prediction": st.sampled_from(["float", "int", "bool", "text", "struct"]),
        "f.num": st.just("float"),
        "f.cat": st.sampled_from(["text", "bool", "dict"]),
        "request_id": st.just("text"),
    },
)


@st.composite
def batches(draw: st.DrawFn) -> list[pa.Table]:
    shape = draw(columns)
    batch_model = draw(models)
    out = []
    for _ in range(draw(st.integers(1, 5))):
        rows = draw(st.integers(0, 6))
        one_model = draw(st.integers(0, 3)) > 0
        model = batch_model if draw(st.integers(0, 4)) else draw(models)
        data: dict[str, pa.Array] = {
            "model": pa.array([model if one_model else draw(models) for _ in range(rows)], pa.string())
        }
        for name, kind in shape.items():
            if kind == "float":
                data[name] = pa.array(
                    [draw(times if name == "timestamp" else floats) for _ in range(rows)], pa.float64()
                )
            elif kind == "text" and name == "timestamp":
                data[name] = pa.array([draw(text_times) for _ in range(rows)], pa.string())
            elif kind == "ns":
                data[name] = pa.array([int((T0 + i) * 1e9) for i in range(rows)], pa.timestamp("ns", tz="UTC"))
            elif kind == "int":
                data[name] = pa.array([draw(st.integers(0, 3)) for _ in range(rows)], pa.int8())
            elif kind == "bool":
                data[name] = pa.array([draw(st.booleans()) for _ in range(rows)])
            elif kind == "struct":
                data[name] = pa.array(
                    [{"score": draw(floats), "class": draw(st.sampled_from(["a", None]))} for _ in range(rows)]
                )
            elif kind == "dict":
                data[name] = pa.array(
                    [draw(st.sampled_from(["DE", "FR", None])) for _ in range(rows)]
                ).dictionary_encode()
            else:
                data[name] = pa.array([draw(st.sampled_from(["x", "y", None])) for _ in range(rows)], pa.string())
        out.append(pa.table(data))
    return out


def rows_and_refusals(decoded: Decoded) -> tuple[list, list]:
    rows = [(t.schema, t.to_pylist()) for t in decoded.predictions]
    refused = [(r.reason, r.detail, r.payload, r.headers) for r in decoded.rejected]
    return rows, refused


@settings(max_examples=150, deadline=None)
@given(batches())
def test_a_batch_decodes_like_its_messages_one_by_one(tables):
    messages = [WireMessage(ipc_stream(t), TOPIC, (("n", str(i).encode()),)) for i, t in enumerate(tables)]
    together = decode_batch(messages, 99.0, Joiners())
    alone = [decode_batch([m], 99.0, Joiners()) for m in messages]
    assert together.formats == [b.formats[0] for b in alone]
    rows, refused = rows_and_refusals(together.decoded)
    one_by_one = [rows_and_refusals(b.decoded) for b in alone]
    assert refused == [r for _, rs in one_by_one for r in rs]
    expected = [row for rs, _ in one_by_one for _, table in rs for row in table]
    assert [row for _, table in rows for row in table] == expected
    # A merged table keeps one chunk per message, so the windows can still fold them in turn.
    kept = [sum(t.num_rows for t in b.decoded.predictions) for b in alone]
    chunks = [len(c) for t in together.decoded.predictions for c in t.column("timestamp").chunks if len(c)]
    assert chunks == [k for k in kept if k] or len(together.decoded.predictions) > 1
