"""Seldon Core 2 on Kafka, message by message, as its gateways write them.

Sources (SeldonIO/seldon-core at 7b77f8b, v2.9+):

- ``scheduler/pkg/kafka/topics.go`` — ``seldon.<ns>.model.<model>.inputs|outputs`` and
  ``seldon.<ns>.pipeline.<pipeline>.inputs|outputs`` (prefix ``seldon`` unless configured).
- ``scheduler/pkg/kafka/pipeline/kafkamanager.go`` (``Infer``) — the pipeline gateway writes a
  request to the inputs topic of the model or pipeline on a partition it consumes, keyed
  ``<partition>.<resource>.<request id>`` (v2.9; ``<resource>.<request id>`` in v2.8, the bare
  id before), with the client's ``x-*`` headers, ``pipeline: <resource>`` and
  ``x-request-id`` (added when the client sent none; ``scheduler/pkg/util/ids.go`` makes an
  xid); OpenTelemetry's ``traceparent`` is injected too. The value is the request converted to
  a ``ModelInferRequest`` (``ConvertRequestToV2Bytes(data, "", "")``: no model name or version).
- ``scheduler/pkg/kafka/gateway/worker.go`` — the model gateway calls the model (its gRPC
  request's ``model_version`` pinned to ``1``, ``scheduler/pkg/util/model.go``) and writes the
  ``ModelInferResponse`` to the outputs topic, same partition, same key, the input's headers
  plus the response's ``x-*`` headers. The server answers under the agent's internal name
  ``<model>_<n>`` with version ``1`` (``scheduler/pkg/agent/repository/mlserver/mlserver.go``).
- ``scheduler/data-flow/.../StreamTransforms.kt`` — a pipeline's outputs: a
  ``ModelInferResponse`` with the request's id and the last step's tensors, headers and key
  carried through.
- ``scheduler/pkg/kafka/schema/schema.go`` and confluent-kafka-go's protobuf serializer — with a
  schema registry the value is framed: magic ``0``, the schema id (big-endian u32), the
  message-index path as zig-zag varints (a single ``0`` for a file's first message — both
  messages are, ``apis/mlops/v2_dataplane/schema_registry/*.proto``), then the protobuf.

Values are encoded with Triton's generated classes (:mod:`~tests.exporter.decoders.corpus.triton`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.exporter.decoders.corpus.triton import ModelInferRequest, ModelInferResponse


@dataclass(frozen=True)
class Written:
    topic: str
    value: bytes
    key: bytes
    headers: tuple[tuple[str, bytes], ...]
    partition: int = 0  # inputs and outputs of one inference share it


def composite_key(partition: int, resource: str, request_id: str, release: str = "2.9") -> bytes:
    """The Kafka key kafkamanager.go writes, by release."""
    if release == "2.9":
        return f"{partition}.{resource}.{request_id}".encode()
    if release == "2.8":
        return f"{resource}.{request_id}".encode()
    return request_id.encode()


def confluent_framed(message: bytes, schema_id: int, indexes: tuple[int, ...] = (0,)) -> bytes:
    """confluent-kafka-go's protobuf serializer framing around a serialized message."""
    if indexes == (0,):
        path = b"\x00"  # the serializer's shortcut for a file's first message
    else:
        path = b"".join(_zigzag(value) for value in (len(indexes), *indexes))
    return b"\x00" + struct.pack(">I", schema_id) + path + message


def _zigzag(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def request_message(rows: list[list[float]], name: str = "predict", *, raw: bool = False) -> bytes:
    """What ConvertRequestToV2Bytes makes of an OIP REST request: no model name or version."""
    request = ModelInferRequest()
    tensor = request.inputs.add(name=name, datatype="FP32", shape=[len(rows), len(rows[0])])
    flat = [v for row in rows for v in row]
    if raw:
        request.raw_input_contents.append(np.asarray(flat, dtype="<f4").tobytes())
    else:
        tensor.contents.fp32_contents.extend(flat)
    return request.SerializeToString()


def columns_request_message(columns: dict[str, list[Any]]) -> bytes:
    """A request in MLServer's pandas-codec layout (mlserver/codecs/pandas.py): one input tensor
    per column, shape ``[rows, 1]``, FP64 for numbers and BYTES for text — as the pipeline
    gateway converts its REST form to protobuf."""
    request = ModelInferRequest()
    for name, values in columns.items():
        text = any(isinstance(v, str) for v in values)
        tensor = request.inputs.add(name=name, datatype="BYTES" if text else "FP64", shape=[len(values), 1])
        if text:
            tensor.contents.bytes_contents.extend(str(v).encode() for v in values)
        else:
            tensor.contents.fp64_contents.extend(float(v) for v in values)
    return request.SerializeToString()


def response_message(
    scores: list[float], *, model_name: str = "", model_version: str = "", request_id: str = "", raw: bool = False
) -> bytes:
    """A server's ModelInferResponse: one FP64 output of one score per row."""
    response = ModelInferResponse(model_name=model_name, model_version=model_version, id=request_id)
    tensor = response.outputs.add(name="predict_proba", datatype="FP64", shape=[len(scores), 1])
    if raw:
        response.raw_output_contents.append(np.asarray(scores, dtype="<f8").tobytes())
    else:
        tensor.contents.fp64_contents.extend(scores)
    return response.SerializeToString()


@dataclass(frozen=True)
class Gateway:
    """One Seldon Core 2 install: namespace, release, and whether a schema registry frames values."""

    namespace: str = "seldon-mesh"
    release: str = "2.9"
    schema_ids: tuple[int, int] | None = None  # (inputs subject's id, outputs subject's id)
    generation: int = 1  # the model's Seldon generation: the agent's internal name <model>_<n>

    def model_inference(
        self,
        model: str,
        request_id: str,
        rows: list[list[float]] | dict[str, list[Any]],
        scores: list[float],
        *,
        partition: int = 0,
        client_headers: tuple[tuple[str, str], ...] = (),
        raw: bool = False,
    ) -> list[Written]:
        """The inputs and outputs messages of one inference on a model's topics (``rows`` as one
        2-D tensor, or as named columns in the pandas-codec layout)."""
        return self._pair("model", model, request_id, rows, scores, partition, client_headers, raw)

    def pipeline_inference(
        self,
        pipeline: str,
        request_id: str,
        rows: list[list[float]],
        scores: list[float],
        *,
        partition: int = 0,
    ) -> list[Written]:
        """The inputs and outputs messages of one inference on a pipeline's topics."""
        return self._pair("pipeline", pipeline, request_id, rows, scores, partition, (), False)

    def _pair(
        self,
        kind: str,
        resource: str,
        request_id: str,
        rows: list[list[float]] | dict[str, list[Any]],
        scores: list[float],
        partition: int,
        client_headers: tuple[tuple[str, str], ...],
        raw: bool,
    ) -> list[Written]:
        key = composite_key(partition, resource, request_id, self.release)
        trace = f"00-{request_id.encode().hex()[:32].ljust(32, '0')}-00f067aa0ba902b7-01"
        headers = [
            *((name.lower(), value.encode()) for name, value in client_headers if name.lower().startswith("x-")),
            ("pipeline", resource.encode()),
            ("x-request-id", request_id.encode()),
            ("traceparent", trace.encode()),
        ]
        inputs = columns_request_message(rows) if isinstance(rows, dict) else request_message(rows, raw=raw)
        if kind == "model":
            internal = f"{resource}_{self.generation}"
            outputs = response_message(scores, model_name=internal, model_version="1", request_id=request_id, raw=raw)
            answer_headers = [("x-seldon-route", f":{internal}:".encode())]
        else:
            outputs = response_message(scores, request_id=request_id, raw=raw)
            answer_headers = []
        if self.schema_ids is not None:
            inputs = confluent_framed(inputs, self.schema_ids[0])
            outputs = confluent_framed(outputs, self.schema_ids[1])
        base = f"seldon.{self.namespace}.{kind}.{resource}"
        return [
            Written(f"{base}.inputs", inputs, key, tuple(headers), partition),
            Written(f"{base}.outputs", outputs, key, (*headers, *answer_headers), partition),
        ]
