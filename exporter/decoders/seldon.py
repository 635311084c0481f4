"""Seldon Core 2 topics: ``seldon.<namespace>.model|pipeline.<name>.inputs|outputs``.

What Seldon's gateways write, and where each fact comes from (SeldonIO/seldon-core v2):

* **Topics** (``scheduler/pkg/kafka/topics.go``): a model's ``seldon.<ns>.model.<model>.inputs``
  and ``.outputs``, a pipeline's ``seldon.<ns>.pipeline.<pipeline>.inputs`` and ``.outputs``.
  The model (or pipeline) and its namespace come from the topic.
* **Values**: Open Inference Protocol protobufs — ``ModelInferRequest`` on ``inputs``,
  ``ModelInferResponse`` on ``outputs``. With a schema registry configured
  (``scheduler/pkg/kafka/schema/schema.go``, since v2.9) the gateways frame them the way
  Confluent's protobuf serializer does: magic byte ``0``, the schema id (4 bytes, big-endian),
  the message-index path (zig-zag varints: a count, then the indexes; a single ``0`` for the
  file's first message), then the protobuf. A protobuf never starts with a zero byte (field 0
  does not exist), so a framed value is told apart by its first byte and unframed here.
* **Request id**: the ``x-request-id`` header (``scheduler/pkg/util/ids.go``), which the
  pipeline gateway adds when missing and the model gateway copies to the outputs. It comes
  first because the Kafka key is not the request id on current releases
  (``scheduler/pkg/kafka/pipeline/kafkamanager.go``): ``<resource>.<id>`` since v2.8,
  ``<partition>.<resource>.<id>`` since v2.9 — only v2.7 and before keyed by the bare id.
  Then the key, then the message's ``id`` field. The ``pipeline`` header names the resource.
* **Version**: the model gateway pins ``model_version`` to ``1`` for every model it calls
  (``scheduler/pkg/util/model.go``: ``GetPinnedModelVersion``), and the server answers under the
  agent's internal name ``<model>_<n>`` (``n`` Seldon's own generation counter, not a version
  the user chose). An outputs message under that internal name therefore carries no
  explicit version; any other ``model_version`` is taken as one.

Tensor values come from ``contents`` or from ``raw_*_contents`` (little-endian), and map to
features and predictions as in :mod:`exporter.decoders.oip_tensors`.

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
    tensor_probabilities,
)
from exporter.decoders.record_error import RecordError
from exporter.decoders.sink import DecodeSink
from exporter.records import Decoded, Reason

# Namespaces are DNS labels (no dots); model and pipeline names may hold dots.
TOPIC_PATTERN = re.compile(
    r"seldon\.(?P<namespace>[^.]+)\.(?P<kind>model|pipeline)\.(?P<model>.+)\.(?P<side>inputs|outputs)"
)
REQUEST_ID_HEADER = "x-request-id"
CONFLUENT_MAGIC = 0
# Seldon's agent loads model ``m`` into the server as ``m_<n>`` and pins its version to "1".
_INTERNAL_NAME = re.compile(r"(?P<model>.+)_(?P<generation>[0-9]+)")

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
    model: str  # the model's name, or the pipeline's
    side: Side
    kind: str = "model"  # "model" or "pipeline"

    def name(self) -> str:
        """The topic's name again."""
        side = "inputs" if self.side is Side.REQUEST else "outputs"
        return f"seldon.{self.namespace}.{self.kind}.{self.model}.{side}"


def seldon_topic(topic: str) -> SeldonTopic | None:
    """What a Seldon model or pipeline topic name says, or None for any other topic.

    >>> seldon_topic("seldon.prod.model.iris.inputs")
    SeldonTopic(namespace='prod', model='iris', side=<Side.REQUEST: 'request'>, kind='model')
    >>> seldon_topic("seldon.prod.pipeline.iris-pipe.outputs").kind
    'pipeline'
    >>> seldon_topic("model-predictions") is None
    True
    """
    match = TOPIC_PATTERN.fullmatch(topic)
    if match is None:
        return None
    side = Side.REQUEST if match["side"] == "inputs" else Side.RESPONSE
    return SeldonTopic(match["namespace"], match["model"], side, match["kind"])


def unframed(value: bytes) -> bytes:
    """The protobuf inside Confluent's schema-registry framing, or ``value`` when unframed.

    >>> unframed(b"\\x00\\x00\\x00\\x00\\x07\\x00\\x0a\\x04iris")  # schema 7, message index [0]
    b'\\n\\x04iris'
    >>> unframed(b"\\x0a\\x04iris")
    b'\\n\\x04iris'
    """
    if not value or value[0] != CONFLUENT_MAGIC:
        return value
    if len(value) < 6:
        raise RecordError(Reason.INVALID_PROTOBUF, "schema-registry framing: shorter than its 5-byte header")
    position = 5  # magic byte and schema id
    count, position = _zigzag_varint(value, position)
    if count < 0 or count > 64:
        raise RecordError(Reason.INVALID_PROTOBUF, f"schema-registry framing: {count} message indexes")
    for _ in range(count):
        _, position = _zigzag_varint(value, position)
    return value[position:]


def _zigzag_varint(value: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(value) or shift > 63:
            raise RecordError(Reason.INVALID_PROTOBUF, "schema-registry framing: truncated message index")
        byte = value[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position


class SeldonJoiner(InferenceJoiner):
    """Joins a model's inputs and outputs messages by request id; see :class:`InferenceJoiner`."""

    # Inputs and outputs are two topics: one may be read far ahead of the other while catching
    # up, so a full buffer of inputs is no sign of a model without outputs.
    SIDES_SHARE_A_TOPIC = False


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
        detail = f"{topic[:200]!r} is not a Seldon model or pipeline topic"
        sink.reject(RecordError(Reason.UNKNOWN_FORMAT, detail), value, headers)
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
        message: Any = kind.FromString(unframed(value))
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise RecordError(Reason.INVALID_PROTOBUF, f"not a {kind.__name__}: {str(exc)[:200]}") from None
    request_id = (
        header_text(headers, REQUEST_ID_HEADER) or (key.decode("utf-8", "replace") if key else "") or message.id
    )
    if not request_id:
        raise RecordError(Reason.MISSING_FIELD, "request id: no x-request-id header, Kafka key or id field")
    features: list[dict[str, object]] | None = None
    predictions: list[Prediction] | None = None
    probabilities: list[tuple[float, ...] | None] | None = None
    try:
        if where.side is Side.REQUEST:
            tensors = _tensors(message.inputs, message.raw_input_contents, Reason.BAD_FEATURES)
            features = feature_rows(tensors, max_features)
        else:
            tensors = _tensors(message.outputs, message.raw_output_contents, Reason.BAD_PREDICTION)
            predictions = prediction_rows(tensors)
            probabilities = tensor_probabilities(tensors)
    except RecordError as error:
        # Refused now, but still offered to the joiner so its partner is not held back.
        sink.reject(error, value, headers)
    time = record_time if record_time is not None and math.isfinite(record_time) else None
    return InferenceHalf(
        key=seldon_key(where, request_id),
        request_id=request_id,
        model=where.model,
        model_namespace=where.namespace,
        model_version=_explicit_version(message, where),
        deployment_slot=None,
        time=time,
        features=features,
        predictions=predictions,
        payload=value,
        headers=headers,
        probabilities=probabilities,
    )


def seldon_key(where: SeldonTopic, request_id: str) -> tuple[str, ...]:
    """The join key of a half: a pipeline's halves never pair with a model's of the same name."""
    if where.kind == "model":
        return (where.namespace, where.model, request_id)
    return (where.namespace, where.model, request_id, where.kind)


def topic_of(side: Side, half: InferenceHalf) -> str:
    """The topic a half was read from (its key says model or pipeline)."""
    key = half.key if isinstance(half.key, tuple) else ()
    kind = str(key[3]) if len(key) > 3 else "model"
    return SeldonTopic(str(half.model_namespace), half.model, side, kind).name()


def _explicit_version(message: Any, where: SeldonTopic) -> str | None:
    """The message's ``model_version``, unless it is the one Seldon pins on its internal names."""
    version = message.model_version or None
    internal = _INTERNAL_NAME.fullmatch(message.model_name or "")
    if version is not None and internal is not None and internal["model"] == where.model:
        return None  # "<model>_<n>" answering with the pinned "1": no version of the user's
    return version


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
