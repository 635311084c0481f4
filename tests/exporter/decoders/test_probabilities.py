"""A multiclass prediction logged as a probability vector keeps the vector: ``p.<k>`` columns.

Native JSON (``"prediction": [0.1, 0.7, 0.2]``), KServe V1 as a ``predict_proba`` server
answers (kserve/kserve ``python/sklearnserver/sklearnserver/model.py``: ``{"predictions":
[[…], …]}`` per instance), an OIP v2 float output of three or more values a row (KServe and
Seldon Core 2), and the sidecar forwarding them again as NDJSON or Arrow IPC.
"""

from __future__ import annotations

import json

import pyarrow as pa

from exporter.decoders.arrow_ipc import decode_arrow_ipc
from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.decoders.native_json import decode_native_json
from exporter.decoders.oip_protobuf import ModelInferResponse
from exporter.decoders.seldon import SeldonJoiner, decode_seldon
from exporter.sidecar.encoding import encode
from tests.exporter.decoders.corpus.kserve import Agent, inference, v1_request, v1_response
from tests.exporter.decoders.messages import seldon_request

VECTORS = [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]


def _probabilities(table: pa.Table) -> list[list[float | None]]:
    names = [n for n in table.column_names if n.startswith("p.")]
    assert names == [f"p.{k}" for k in range(len(names))]
    return [list(row.values()) for row in table.select(names).to_pylist()]


def test_native_json_keeps_a_vector_and_names_the_class_by_position():
    lines = [json.dumps({"model": "m", "timestamp": 1.0, "prediction": v}) for v in VECTORS]
    lines.append(json.dumps({"model": "m", "timestamp": 1.0, "prediction": 0.9}))  # no vector: nulls
    [table] = decode_native_json("\n".join(lines).encode(), now=0.0).predictions
    assert table.column("prediction_class").to_pylist() == ["1", "0", None]
    assert table.column("prediction_score").to_pylist() == [0.7, 0.6, 0.9]
    assert _probabilities(table) == [*VECTORS, [None, None, None]]


def test_binary_vectors_and_scalars_add_no_columns():
    lines = [json.dumps({"model": "m", "timestamp": 1.0, "prediction": p}) for p in ([0.2, 0.8], 0.4, "a")]
    [table] = decode_native_json("\n".join(lines).encode(), now=0.0).predictions
    assert not [n for n in table.column_names if n.startswith("p.")]


def test_kserve_v1_predict_proba_pairs_with_its_vectors():
    agent = Agent("iris", "prod")
    joiner = KServeJoiner()
    tables = []
    for i, vector in enumerate(VECTORS):
        for event in inference(agent, v1_request([{"x0": float(i)}]), v1_response([vector]), at=100.0 + i):
            tables += decode_kserve(event.value, 200.0, joiner, headers=event.headers).predictions
    rows = pa.concat_tables(tables, promote_options="default")
    assert _probabilities(rows) == VECTORS and rows.column("prediction_class").to_pylist() == ["1", "0"]


def test_an_oip_v2_probability_tensor_from_seldon():
    joiner = SeldonJoiner()
    inputs, outputs = "seldon.prod.model.iris.inputs", "seldon.prod.model.iris.outputs"
    decode_seldon(seldon_request([[1.0, 2.0], [3.0, 4.0]]), inputs, 10.0, joiner, key=b"r1", record_time=5.0)
    response = ModelInferResponse(model_name="iris_1", model_version="1")
    tensor = response.outputs.add(name="proba", datatype="FP32", shape=[2, 3])
    tensor.contents.fp32_contents.extend(v for vector in VECTORS for v in vector)
    paired = decode_seldon(
        response.SerializeToString(),
        outputs,
        11.0,
        joiner,
        key=b"r1",
        record_time=5.1,
    )
    [table] = paired.predictions
    got = _probabilities(table)
    assert [[round(v, 6) for v in row] for row in got] == VECTORS  # FP32 on the wire


def test_the_sidecar_forwards_the_vectors_in_both_formats():
    lines = [json.dumps({"model": "m", "timestamp": 1.0, "prediction": v}) for v in VECTORS]
    [table] = decode_native_json("\n".join(lines).encode(), now=0.0).predictions
    [ndjson] = encode([table], "ndjson", 100)
    [again] = decode_native_json(ndjson.value, now=0.0).predictions
    assert _probabilities(again) == VECTORS and again.column("prediction_class").to_pylist() == ["1", "0"]
    [arrow] = encode([table], "arrow", 100)
    [back] = decode_arrow_ipc(arrow.value, now=0.0).predictions
    assert _probabilities(back) == VECTORS
