"""Hostile and random input: no decoder raises, and no message disappears unaccounted."""

from __future__ import annotations

import json

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.decoders.arrow_ipc import STREAM_CONTINUATION, decode_arrow_ipc
from exporter.decoders.detect import Joiners, decode_message
from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.decoders.native_json import decode_native_json
from exporter.decoders.seldon import SeldonJoiner, decode_seldon
from exporter.decoders.wire_formats import WireFormat
from exporter.records import LABEL_SCHEMA, PREDICTION_COLUMNS, Decoded
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    arrow_batch,
    ipc_stream,
    kserve_headers,
    native_record,
    seldon_request,
    seldon_response,
    structured_event,
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)
record_keys = st.sampled_from(
    [
        "model",
        "model_version",
        "model_namespace",
        "request_id",
        "timestamp",
        "features",
        "prediction",
        "latency_ms",
        "status",
        "label",
    ]
)
timestamps = st.one_of(json_scalars, st.sampled_from(["2026-11-28T18:06:00Z", "2026-11-28T18:06:00.5+01:00"]))
records = st.one_of(
    st.fixed_dictionaries(
        {"model": st.one_of(st.sampled_from(["fraud", "churn"]), json_values)},
        optional={
            "timestamp": timestamps,
            "features": st.one_of(
                st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3), json_values
            ),
            "prediction": json_values,
            "label": json_values,
            "request_id": st.one_of(st.text(max_size=4), json_values),
            "latency_ms": json_values,
        },
    ),
    st.dictionaries(record_keys, json_values, max_size=5),
    json_scalars,
)
header_pairs = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["ce-id", "ce_id", "ce-type", "ce_time", "content-type", "ce-specversion"]),
            st.text(max_size=12),
        ),
        st.one_of(st.binary(max_size=24), st.sampled_from([b"1.0", REQUEST_TYPE.encode(), RESPONSE_TYPE.encode()])),
    ),
    max_size=6,
)


def outcomes(decoded: Decoded) -> int:
    return decoded.prediction_rows + sum(t.num_rows for t in decoded.labels) + len(decoded.rejected)


def assert_contract(decoded: Decoded) -> None:
    # The last-resort guard keeps a consumer alive; on these inputs every failure must
    # be a reasoned refusal instead.
    assert not [r.detail for r in decoded.rejected if r.detail.startswith("decoder failed")]
    for table in decoded.predictions:
        assert tuple(table.column_names[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
        assert table.column("model").null_count == 0 and table.column("timestamp").null_count == 0
        for name in table.column_names[len(PREDICTION_COLUMNS) :]:
            assert name.startswith("f.") and table.schema.field(name).type in (pa.float64(), pa.string())
    for table in decoded.labels:
        assert table.schema == LABEL_SCHEMA


@given(st.lists(records, min_size=1, max_size=12))
def test_ndjson_every_record_is_a_row_a_label_or_a_rejection(batch):
    message = b"\n".join(json.dumps(r).encode("utf-8", "surrogatepass") for r in batch)
    decoded = decode_native_json(message, now=0.0)
    assert_contract(decoded)
    assert outcomes(decoded) == len(batch)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_native_json_never_raises_on_bytes(message):
    decoded = decode_native_json(message, now=0.0)
    assert_contract(decoded)
    assert outcomes(decoded) >= 1 or _is_empty_json_array(message)


def _is_empty_json_array(message: bytes) -> bool:
    try:
        return json.loads(message) == []
    except (ValueError, RecursionError):
        return False


arrow_columns = st.dictionaries(
    st.sampled_from(
        ["model", "timestamp", "prediction", "prediction_class", "request_id", "label", "latency_ms", "f.a", "f.b"]
    ),
    st.sampled_from(["text", "nulltext", "float", "nanfloat", "int", "bool", "list", "timestamp", "null"]),
    max_size=6,
)


def _column(kind: str, rows: int) -> pa.Array:
    return {
        "text": lambda: pa.array([f"v{i % 3}" for i in range(rows)]),
        "nulltext": lambda: pa.array([None if i % 2 else "" if i % 3 else "x" for i in range(rows)], pa.string()),
        "float": lambda: pa.array([i * 0.5 for i in range(rows)]),
        "nanfloat": lambda: pa.array([float("nan") if i % 2 else 1e300 * 1e10 for i in range(rows)]),
        "int": lambda: pa.array(range(rows), pa.int64()),
        "bool": lambda: pa.array([i % 2 == 0 for i in range(rows)]),
        "list": lambda: pa.array([[i] for i in range(rows)]),
        "timestamp": lambda: pa.array([i * 10**18 for i in range(rows)], pa.timestamp("ns")),
        "null": lambda: pa.nulls(rows),
    }[kind]()


@given(arrow_columns, st.integers(0, 5))
def test_arrow_every_row_is_accounted_for_or_the_message_refused(columns, rows):
    table = (
        pa.table({name: _column(kind, rows) for name, kind in columns.items()})
        if columns
        else pa.table({"x": pa.nulls(rows)})
    )
    message = ipc_stream(table)
    decoded = decode_arrow_ipc(message, now=0.0)
    assert_contract(decoded)
    if any(r.payload == message for r in decoded.rejected):
        assert outcomes(decoded) == 1
    else:
        assert outcomes(decoded) == rows


@given(st.binary(max_size=300))
def test_arrow_never_raises_on_bytes(tail):
    message = ipc_stream(arrow_batch(rows=2, features=1))
    for candidate in (STREAM_CONTINUATION + tail, message[: len(tail) % len(message)] + tail):
        decoded = decode_arrow_ipc(candidate, now=0.0)
        assert_contract(decoded)
        assert outcomes(decoded) >= 1 or _is_empty_stream(candidate)


def _is_empty_stream(message: bytes) -> bool:
    try:
        return pa.ipc.open_stream(message).read_all().num_rows == 0
    except Exception:  # noqa: BLE001 - any failure means "not an empty stream"
        return False


kserve_bodies = st.one_of(
    st.binary(max_size=60),
    st.fixed_dictionaries({"instances": json_values}).map(json.dumps).map(str.encode),
    st.fixed_dictionaries({"predictions": json_values}).map(json.dumps).map(str.encode),
    st.fixed_dictionaries(
        {
            "inputs": st.lists(
                st.fixed_dictionaries(
                    {
                        "name": st.text(max_size=3),
                        "shape": st.lists(st.integers(-1, 3), max_size=3),
                        "datatype": st.sampled_from(["FP32", "BYTES", "BOOL", "INT8", "XX"]),
                        "data": json_values,
                    }
                ),
                max_size=2,
            )
        }
    )
    .map(json.dumps)
    .map(str.encode),
)


@given(
    kserve_bodies,
    st.sampled_from([REQUEST_TYPE, RESPONSE_TYPE, "other"]),
    st.sampled_from(["ce-", "ce_"]),
    st.one_of(st.none(), st.text(max_size=30)),
    header_pairs,
)
def test_kserve_never_raises_and_every_event_ends_somewhere(body, kind, prefix, time, extra_headers):
    headers = list(kserve_headers("fz", kind, prefix=prefix, time=None).items())
    if time is not None:
        headers.append((f"{prefix}time", time))
    headers.extend((name, value.decode("latin-1")) for name, value in extra_headers)
    joiner = KServeJoiner(max_pending=2, ttl_seconds=1.0)
    decoded = decode_kserve(body, 0.0, joiner, headers=headers)
    drained = joiner.drain(now=0.0)
    assert_contract(decoded)
    assert_contract(drained)
    assert outcomes(decoded) + outcomes(drained) >= 1


@given(st.binary(max_size=120), st.sampled_from(["inputs", "outputs"]), st.one_of(st.none(), st.binary(max_size=8)))
def test_seldon_never_raises_and_every_message_ends_somewhere(value, side, key):
    joiner = SeldonJoiner()
    decoded = decode_seldon(value, f"seldon.ns.model.m.{side}", 0.0, joiner, key=key, record_time=1.0)
    drained = joiner.drain(now=0.0)
    assert_contract(decoded)
    assert outcomes(decoded) + outcomes(drained) >= 1


valid_messages = st.sampled_from(
    [
        json.dumps(native_record(0, features=3)).encode(),
        ipc_stream(arrow_batch(rows=2, features=2)),
        seldon_request([[1.0, 2.0]]),
        seldon_response([1]),
        b'{"instances": [[1.0]]}',
        b"[" + structured_event("b", REQUEST_TYPE, {"instances": [[1.0, "a"]]}) + b"]",
        b'{"specversion": "1.0", "id": "1", "source": "s", "type": "' + REQUEST_TYPE.encode() + b'"}',
    ]
)


@settings(max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=200),
        valid_messages,
        valid_messages.flatmap(lambda v: st.binary(max_size=40).map(lambda b: v[: len(b) * 3] + b)),
    ),
    header_pairs,
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(["model-predictions", "model-labels", "seldon.ns.model.m.inputs", "seldon.ns.model.m.outputs"]),
    ),
    st.one_of(st.none(), st.binary(max_size=8)),
)
def test_decode_message_never_raises_and_accounts_for_every_message(value, headers, topic, key):
    joiners = Joiners()
    result = decode_message(value, headers, topic, 0.0, joiners, key=key)
    assert isinstance(result.format, WireFormat)
    drained = joiners.drain(now=0.0)
    assert_contract(result.decoded)
    assert outcomes(result.decoded) + outcomes(drained) >= 1 or _is_empty_json_array(value) or _is_empty_stream(value)
