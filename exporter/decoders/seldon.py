"""Seldon Core v2 model topics: ``seldon.<namespace>.model.<model>.inputs|outputs``.

Values are Open Inference Protocol protobufs — ``ModelInferRequest`` on ``inputs``,
``ModelInferResponse`` on ``outputs`` — and the Kafka key is the request id (the
message's ``id`` field, then an ``x-request-id`` header, when there is no key). Tensor
values come from ``contents`` or from ``raw_*_contents`` (little-endian), and map to
features and predictions as in :mod:`exporter.decoders.oip_tensors`. Model and
namespace come from the topic; the version from the messages' ``model_version``.

Protobufs carry no time: the broker's record time of the inputs message is the event
time when the caller passes it (else ``now``), and the gap to the outputs message's
record time is the latency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf.message import DecodeError

from exporter.decoders.field_values import Prediction
from exporter.decoders.inference_pairs import InferenceHalf, InferenceJoiner
from exporter.decoders.joiner import Side
from exporter.decoders.message_headers import Headers, HeadersIn, header_text, normalise_headers
from exporter.decoders.oip_protobuf import ModelInferRequest, ModelInferResponse
from exporter.decoders.oip_tensors import (
    DEFAULT_MAX_FEATURES,
    Tensor,
    element_count,
    feature_rows,
    prediction_rows,
    raw_values,
)
from exporter.decoders.record_error import RecordError
from exporter.decoders.sink import DecodeSink
from exporter.records import Decoded, Reason

# Namespaces are DNS labels (no dots); model names may hold dots.
TOPIC_PATTERN = re.compile(r"seldon\.(?P<namespace>[^.]+)\.model\.(?P<model>.+)\.(?P<side>inputs|outputs)")

# Which InferTensorContents field holds each datatype's values.
CONTENTS_FIELD = MappingProxyType(
    {
        "BOOL": "bool_contents",
        "INT8": "int_contents",
        "INT16": "int_contents",
        "INT32": "int_contents",
        "INT64": "int64_contents",
        "UINT8": "uint_contents",
        "UINT16": "uint_contents",
        "UINT32": "uint_contents",
        "UINT64": "uint64_contents",
        "FP32": "fp32_contents",
        "FP64": "fp64_contents",
        "BYTES": "bytes_contents",
    }
)


@dataclass(frozen=True)
class SeldonTopic:
    namespace: str
    model: str
    side: Side


def seldon_topic(topic: str) -> SeldonTopic | None:
    """What a Seldon model topic name says, or None for any other topic.

    >>> seldon_topic("seldon.prod.model.iris.inputs")
    SeldonTopic(namespace='prod', model='iris', side=<Side.REQUEST: 'request'>)
    >>> seldon_topic("model-predictions") is None
    True
    """
    match = TOPIC_PATTERN.fullmatch(topic)
    if match is None:
        return None
    side = Side.REQUEST if match["side"] == "inputs" else Side.RESPONSE
    return SeldonTopic(match["namespace"], match["model"], side)


class SeldonJoiner(InferenceJoiner):
    """Joins a model's inputs and outputs messages by request id; see :class:`InferenceJoiner`."""


def decode_seldon(
    value: bytes,
    topic: str,
    now: float,
    joiner: SeldonJoiner,
    *,
    headers: HeadersIn = None,
    key: bytes | None = None,
    record_time: float | None = None,
) -> Decoded:
    """Decode one message of a Seldon model topic; rows appear once inputs and outputs are in."""
    sink = DecodeSink()
    message_headers = normalise_headers(headers)
    with sink.guard(Reason.INVALID_PROTOBUF, value, message_headers):
        decode_seldon_into(sink, value, message_headers, topic, now, joiner, key=key, record_time=record_time)
    return sink.finish()


def decode_seldon_into(
    sink: DecodeSink,
    value: bytes,
    headers: Headers,
    topic: str,
    now: float,
    joiner: SeldonJoiner,
    *,
    key: bytes | None = None,
    record_time: float | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> None:
    read = seldon_half(sink, value, headers, topic, key=key, record_time=record_time, max_features=max_features)
    if read is not None:
        joiner.add_into(sink, read[0], read[1], now)


def seldon_half(
    sink: DecodeSink,
    value: bytes,
    headers: Headers,
    topic: str,
    *,
    key: bytes | None = None,
    record_time: float | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> tuple[Side, InferenceHalf] | None:
    """The half one message carries, not yet joined; None (refused into ``sink``) when it
    cannot be identified (scale-out pairs halves in stage 2)."""
    where = seldon_topic(topic)
    if where is None:
        sink.reject(RecordError(Reason.UNKNOWN_FORMAT, f"{topic[:200]!r} is not a Seldon model topic"), value, headers)
        return None
    try:
        half = _read_half(sink, where, value, headers, key, record_time, max_features)
    except RecordError as error:
        sink.reject(error, value, headers)
        return None
    return where.side, half


def _read_half(
    sink: DecodeSink,
    where: SeldonTopic,
    value: bytes,
    headers: Headers,
    key: bytes | None,
    record_time: float | None,
    max_features: int,
) -> InferenceHalf:
    kind = ModelInferRequest if where.side is Side.REQUEST else ModelInferResponse
    try:
        message: Any = kind.FromString(value)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise RecordError(Reason.INVALID_PROTOBUF, f"not a {kind.__name__}: {str(exc)[:200]}") from None
    request_id = (key.decode("utf-8", "replace") if key else "") or message.id or header_text(headers, "x-request-id")
    if not request_id:
        raise RecordError(Reason.MISSING_FIELD, "request id: no Kafka key, id field or x-request-id header")
    features: list[dict[str, object]] | None = None
    predictions: list[Prediction] | None = None
    try:
        if where.side is Side.REQUEST:
            tensors = _tensors(message.inputs, message.raw_input_contents, Reason.BAD_FEATURES)
            features = feature_rows(tensors, max_features)
        else:
            tensors = _tensors(message.outputs, message.raw_output_contents, Reason.BAD_PREDICTION)
            predictions = prediction_rows(tensors)
    except RecordError as error:
        # Refused now, but still offered to the joiner so its partner is not held back.
        sink.reject(error, value, headers)
    time = record_time if record_time is not None and math.isfinite(record_time) else None
    return InferenceHalf(
        key=(where.namespace, where.model, request_id),
        request_id=request_id,
        model=where.model,
        model_namespace=where.namespace,
        model_version=message.model_version or None,
        fallback_version=None,
        time=time,
        features=features,
        predictions=predictions,
        payload=value,
        headers=headers,
    )


def _tensors(declared: Any, raw: Any, reason: Reason) -> list[Tensor]:
    if raw and len(raw) != len(declared):
        raise RecordError(Reason.SHAPE_MISMATCH, f"{len(raw)} raw contents for {len(declared)} tensors")
    tensors = []
    for index, tensor in enumerate(declared):
        where = f"tensor {tensor.name[:64]!r}"
        datatype = tensor.datatype.upper()
        shape = tuple(tensor.shape)
        count = element_count(shape, where)
        if raw:
            values = raw_values(datatype, raw[index], count, where, reason)
        else:
            values = _contents_values(tensor, datatype, count, where, reason)
        tensors.append(Tensor(tensor.name, datatype, shape, values))
    return tensors


def _contents_values(tensor: Any, datatype: str, count: int, where: str, reason: Reason) -> list[object]:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        detail = "FP16 needs raw contents" if datatype == "FP16" else f"unknown datatype {datatype[:32]!r}"
        raise RecordError(reason, f"{where}: {detail}")
    values = list(getattr(tensor.contents, field))
    if len(values) != count:
        raise RecordError(Reason.SHAPE_MISMATCH, f"{where}: shape needs {count} values, contents hold {len(values)}")
    return values
