"""Native JSON prediction logs: one record per message, a JSON array, or NDJSON.

A prediction record::

    {"model": "fraud", "model_version": "7", "request_id": "r-1", "timestamp": 1795889160.5,
     "features": {"amount": 12.5, "country": "DE"}, "prediction": 0.93,
     "latency_ms": 12.3, "status": "ok"}

A label record (on the labels topic, or anywhere when it has ``label`` and no
``features``)::

    {"model": "fraud", "request_id": "r-1", "label": 1, "timestamp": 1795889160.5}

Each record stands alone: a bad line of NDJSON is refused by itself, with that line as
the dead-letter payload, and the rest of the message is decoded.

An NDJSON batch of well-formed records of one model is read column-wise by Arrow instead
(:mod:`~exporter.decoders.ndjson_columns`), with the same result; any other message, and
any batch that needs a closer look, is read line by line here.
"""

from __future__ import annotations

import json

from exporter.decoders.field_values import (
    class_probabilities,
    label_parts,
    number_field,
    prediction_parts,
    text_field,
)
from exporter.decoders.message_headers import Headers, HeadersIn, normalise_headers
from exporter.decoders.ndjson_columns import read_predictions
from exporter.decoders.record_error import RecordError
from exporter.decoders.row_builders import PredictionRows
from exporter.decoders.sink import DecodeSink
from exporter.decoders.timestamps import epoch_seconds
from exporter.decoders.wire_formats import WireFormat
from exporter.records import Decoded, Reason, Rejected


def decode_native_json(value: bytes, now: float, *, headers: HeadersIn = None, labels_only: bool = False) -> Decoded:
    """Decode one native JSON / NDJSON message; ``now`` stands in for missing timestamps.

    >>> out = decode_native_json(b'{"model": "fraud", "features": {"amount": 12.5}, "prediction": 0.9}', now=1.0)
    >>> out.predictions[0].select(["model", "timestamp", "prediction_score", "f.amount"]).to_pylist()
    [{'model': 'fraud', 'timestamp': 1.0, 'prediction_score': 0.9, 'f.amount': 12.5}]
    """
    sink = DecodeSink()
    message_headers = normalise_headers(headers)
    with sink.guard(Reason.INVALID_JSON, value, message_headers):
        decode_native_json_into(sink, value, message_headers, now, labels_only=labels_only)
    return sink.finish()


def decode_native_json_into(
    sink: DecodeSink, value: bytes, headers: Headers, now: float, *, labels_only: bool = False
) -> WireFormat:
    """Add one message's records to ``sink``; says whether it was one JSON document or NDJSON."""
    if not labels_only:
        columns = read_predictions(value, now)
        if columns is not None:
            model, table = columns
            sink.predictions_for(model).append_table(table, _line_by_line(value, headers, now, model), (value, headers))
            return WireFormat.NDJSON
    return _decode_document(sink, value, headers, now, labels_only=labels_only)


def _line_by_line(value: bytes, headers: Headers, now: float, model: str):  # type: ignore[no-untyped-def]
    """How to read a column-read message line by line after all (see PredictionRows)."""

    def decode() -> tuple[PredictionRows | None, list[Rejected]]:
        sink = DecodeSink()
        _decode_document(sink, value, headers, now, labels_only=False)
        return sink.predictions_for(model), sink.rejected

    return decode


def _decode_document(
    sink: DecodeSink, value: bytes, headers: Headers, now: float, *, labels_only: bool = False
) -> WireFormat:
    try:
        document = json.loads(value)
    except RecursionError:
        sink.reject(RecordError(Reason.INVALID_JSON, "JSON nested too deeply"), value, headers)
        return WireFormat.JSON
    except ValueError as exc:
        if b"\n" in value.strip():
            return _decode_lines(sink, value, headers, now, labels_only, exc)
        sink.reject(RecordError(Reason.INVALID_JSON, _json_problem(exc)), value, headers)
        return WireFormat.JSON
    if type(document) is list:
        for element in document:
            add_record(sink, element, _reencoded(element), headers, now, labels_only)
    else:
        add_record(sink, document, value, headers, now, labels_only)
    return WireFormat.JSON


def _decode_lines(
    sink: DecodeSink, value: bytes, headers: Headers, now: float, labels_only: bool, whole_error: ValueError
) -> WireFormat:
    parsed: list[tuple[object, bytes]] = []
    broken: list[tuple[str, bytes]] = []
    for line in value.split(b"\n"):
        if not line.strip():
            continue
        try:
            parsed.append((json.loads(line), line))
        except RecursionError:
            broken.append(("JSON nested too deeply", line))
        except ValueError as exc:
            broken.append((_json_problem(exc), line))
    # A message no line of which is JSON is one broken document, not many broken records.
    if not parsed:
        sink.reject(RecordError(Reason.INVALID_JSON, _json_problem(whole_error)), value, headers)
        return WireFormat.JSON
    for detail, line in broken:
        sink.reject(RecordError(Reason.INVALID_JSON, detail), line, headers)
    for record, line in parsed:
        add_record(sink, record, line, headers, now, labels_only)
    return WireFormat.NDJSON


def add_record(
    sink: DecodeSink, record: object, payload: bytes, headers: Headers, now: float, labels_only: bool
) -> None:
    """Validate one decoded JSON record and add it to ``sink`` as a prediction or a label."""
    try:
        if type(record) is not dict:
            raise RecordError(Reason.INVALID_JSON, f"expected a JSON object, got {_json_kind(record)}")
        if labels_only or ("label" in record and "features" not in record):
            add_label(sink, record, now)
        else:
            _add_prediction(sink, record, now, payload, headers)
    except RecordError as error:
        sink.reject(error, payload, headers)


def _add_prediction(sink: DecodeSink, record: dict[str, object], now: float, payload: bytes, headers: Headers) -> None:
    model = _required_text(record, "model")
    model_version = text_field(record.get("model_version"), "model_version")
    model_namespace = text_field(record.get("model_namespace"), "model_namespace")
    request_id = text_field(record.get("request_id"), "request_id")
    timestamp = epoch_seconds(record.get("timestamp"), now)
    score, klass = prediction_parts(record.get("prediction"))
    latency_ms = number_field(record.get("latency_ms"), "latency_ms")
    status = text_field(record.get("status"), "status")
    features = record.get("features")
    if features is None:
        features = {}
    elif type(features) is not dict:
        raise RecordError(Reason.BAD_FEATURES, f"features: expected an object, got {_json_kind(features)}")
    sink.predictions_for(model).append(
        model_version=model_version,
        model_namespace=model_namespace,
        request_id=request_id,
        timestamp=timestamp,
        prediction_score=score,
        prediction_class=klass,
        latency_ms=latency_ms,
        status=status,
        features=features,
        source=(payload, headers),
        probabilities=class_probabilities(record.get("prediction")),
    )


def add_label(sink: DecodeSink, record: dict[str, object], now: float) -> None:
    """Add one label record to ``sink``, or raise :class:`RecordError` saying why not."""
    model = _required_text(record, "model")
    request_id = _required_text(record, "request_id")
    label_value, label_class = label_parts(record.get("label"))
    timestamp = epoch_seconds(record.get("timestamp"), now)
    sink.labels.append(model, request_id, label_value, label_class, timestamp)


def _required_text(record: dict[str, object], name: str) -> str:
    text = text_field(record.get(name), name)
    if not text:
        raise RecordError(Reason.MISSING_FIELD, f"{name}: required")
    return text


def _reencoded(element: object) -> bytes:
    # An element of a JSON array has no bytes of its own; its dead-letter payload is
    # the element written back out.
    try:
        return json.dumps(element, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return repr(element).encode("utf-8", "surrogatepass")


def _json_kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _json_problem(exc: ValueError) -> str:
    return f"not JSON: {str(exc)[:200]}"
