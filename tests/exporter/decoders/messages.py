"""Messages built to the shapes real producers send, for the decoder tests and throughput runs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from exporter.decoders.oip_protobuf import ModelInferRequest, ModelInferResponse

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
T0 = 1795889160.0  # 2026-11-28T18:06:00Z


def native_record(i: int = 0, features: int = 20, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "model": "fraud",
        "model_version": "7",
        "request_id": f"r-{i}",
        "timestamp": T0 + i,
        "features": {f"x{j}": (i * 0.5 + j if j % 4 else f"c{(i + j) % 7}") for j in range(features)},
        "prediction": 0.93,
        "latency_ms": 12.3,
        "status": "ok",
    }
    record.update(overrides)
    return record


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records) + b"\n"


def ipc_stream(table: pa.Table) -> bytes:
    out = pa.BufferOutputStream()
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)
    return out.getvalue().to_pybytes()


def arrow_batch(rows: int = 500, features: int = 20) -> pa.Table:
    columns: dict[str, Any] = {
        "model": ["fraud"] * rows,
        "model_version": ["7"] * rows,
        "request_id": [f"r-{i}" for i in range(rows)],
        "timestamp": [T0 + i for i in range(rows)],
        "prediction": [0.5 + (i % 10) / 100 for i in range(rows)],
        "latency_ms": [12.3] * rows,
        "status": ["ok"] * rows,
    }
    for j in range(features):
        columns[f"f.x{j}"] = (
            [f"c{(i + j) % 7}" for i in range(rows)] if j % 4 == 0 else [i * 0.5 + j for i in range(rows)]
        )
    return pa.table(columns)


def kserve_headers(
    event_id: str,
    kind: str,
    *,
    time: str | None = "2026-11-28T18:06:00.000000000Z",
    service: str = "sklearn-iris",
    namespace: str = "prod",
    component: str = "predictor",
    endpoint: str = "default",
    prefix: str = "ce-",
) -> dict[str, str]:
    """The attributes KServe's logger sends, as HTTP (``ce-``) or KafkaSink (``ce_``) headers."""
    headers = {
        "Content-Type": "application/json",
        f"{prefix}specversion": "1.0",
        f"{prefix}id": event_id,
        f"{prefix}source": "http://localhost:9081/",
        f"{prefix}type": kind,
        f"{prefix}inferenceservicename": service,
        f"{prefix}namespace": namespace,
        f"{prefix}component": component,
        f"{prefix}endpoint": endpoint,
    }
    if time is not None:
        headers[f"{prefix}time"] = time
    return headers


def kafka_headers(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(name.lower(), value.encode()) for name, value in headers.items()]


def structured_event(event_id: str, kind: str, data: dict[str, Any], *, time: str | None = None) -> bytes:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "http://localhost:9081/",
        "type": kind,
        "datacontenttype": "application/json",
        "inferenceservicename": "sklearn-iris",
        "namespace": "prod",
        "component": "predictor",
        "endpoint": "default",
        "data": data,
    }
    if time is not None:
        event["time"] = time
    return json.dumps(event).encode()


def v2_request(values: list[list[float]], name: str = "input-0") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": [len(values), len(values[0])], "datatype": "FP32", "data": values}]}


def v2_response(scores: list[float]) -> dict[str, Any]:
    return {
        "model_name": "sklearn-iris",
        "model_version": "3",
        "id": "x",
        "outputs": [{"name": "output-0", "shape": [len(scores)], "datatype": "FP64", "data": scores}],
    }


def seldon_request(rows: list[list[float]], *, raw: bool = False, request_id: str = "") -> bytes:
    request = ModelInferRequest(model_name="iris_1", id=request_id)
    tensor = request.inputs.add(name="predict", datatype="FP32", shape=[len(rows), len(rows[0])])
    flat = [v for row in rows for v in row]
    if raw:
        request.raw_input_contents.append(np.asarray(flat, dtype="<f4").tobytes())
    else:
        tensor.contents.fp32_contents.extend(flat)
    return request.SerializeToString()


def seldon_response(classes: list[int], *, raw: bool = False, version: str = "1") -> bytes:
    response = ModelInferResponse(model_name="iris_1", model_version=version)
    tensor = response.outputs.add(name="predict", datatype="INT64", shape=[len(classes), 1])
    if raw:
        response.raw_output_contents.append(np.asarray(classes, dtype="<i8").tobytes())
    else:
        tensor.contents.int64_contents.extend(classes)
    return response.SerializeToString()
