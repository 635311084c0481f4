"""KServe payload-logger CloudEvents: one event for the request, one for the response.

The logger sends binary-mode events — attributes in ``ce-`` HTTP headers, or ``ce_``
Kafka headers when a KafkaSink sits in between; recent releases post a request and its
response together in batched mode (``application/cloudevents-batch+json``, a JSON array
of structured events). The cloudevents library reads binary and structured mode
(``application/cloudevents+json``); a batch is split here into structured events. The
two events share ``ce-id`` and have types ``org.kubeflow.serving.inference.request`` /
``...response``.

Identity: ``ce-inferenceservicename`` is the model and ``ce-namespace`` its namespace. An
explicit version is ``ce-modelversion`` when present, else a v2 response's
``model_version``; KServe's own agent sends neither. ``ce-endpoint`` is the *deployment
slot* (the controller starts the agent with ``--endpoint`` from the pod's ``endpoint``
label: ``default``, or ``canary``), never a version: it goes in the ``deployment_slot``
column, and only the configuration maps a slot to a version
(:mod:`exporter.pipeline.model_versions`). A component other than the predictor (a
transformer, an explainer) logs under ``<service>-<component>``, like its Kubernetes
service, so that its traffic — different inputs — never mixes with the predictor's.

Extensions the agent adds (``pkg/logger/worker.go``): ``metadata``, the JSON object of the
request headers named in ``logger.metadataHeaders`` (``{"X-Request-Id": ["…"]}``, Go's
canonical names). Its ``X-Request-Id`` (any case) becomes the rows' request id — the id a
label pipeline knows, where ``ce-id`` is the client's ``Ce-Id`` header or a random UUID;
pairing still uses ``ce-id``. Every metadata header also becomes a feature
``header.<name in lower case>`` (its first value), so a tenant or segment header can be
monitored like any categorical feature. ``statuscode`` (the ``logAllResponses`` option
proposed in kserve/kserve#6036, unreleased as of 2026-12) marks a response the server
answered with an error: a non-2xx code gives status ``http_<code>`` and no prediction.

Bodies: V1 ``{"instances": [...]}`` (rows as objects, or lists whose values become
``instances_<j>``) / ``{"predictions": [...]}``, and Open Inference Protocol v2
``{"inputs": [tensors]}`` / ``{"outputs": [tensors]}`` (see
:mod:`exporter.decoders.oip_tensors`). One request of N instances gives N rows with
request ids ``<ce-id>/<i>`` (just ``<ce-id>`` when N is 1).
"""

from __future__ import annotations

import json
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cloudevents.core.bindings import http, kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from exporter.decoders.field_values import Prediction, class_probabilities, prediction_parts
from exporter.decoders.inference_pairs import STATUS_OK, InferenceHalf, InferenceJoiner
from exporter.decoders.joiner import Side
from exporter.decoders.message_headers import Headers, HeadersIn, header_text, normalise_headers
from exporter.decoders.oip_tensors import (
    DEFAULT_MAX_FEATURES,
    feature_rows,
    flattened,
    prediction_rows,
    tensor_from_json,
    tensor_probabilities,
)
from exporter.decoders.record_error import RecordError
from exporter.decoders.sink import DecodeSink
from exporter.decoders.timestamps import datetime_seconds
from exporter.records import Decoded, Reason

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
PREDICTOR_COMPONENTS = frozenset({"", "predictor"})
REQUEST_ID_HEADER = "x-request-id"
HEADER_FEATURE_PREFIX = "header."

_SIDES = MappingProxyType({REQUEST_TYPE: Side.REQUEST, RESPONSE_TYPE: Side.RESPONSE})


class KServeJoiner(InferenceJoiner):
    """Joins KServe request and response events by ``ce-id`` (per service and component).

    ``max_pending`` bounds the halves held, ``ttl_seconds`` how long one waits; the
    counters ``expired_requests``, ``evicted_requests`` (emitted without prediction) and
    ``expired_responses``, ``evicted_responses`` (refused) say what did not pair.
    """


class _LoggedEvent(CloudEvent):
    # The library fills a missing id with a random one and a missing time with the
    # current time. A random id could never pair, and a row's event time and latency
    # must come from the logger, so remember what the event really carried.
    def __init__(self, attributes: dict[str, Any], data: dict[str, Any] | str | bytes | None = None) -> None:
        self.id_given = "id" in attributes
        self.time_given = "time" in attributes
        super().__init__(attributes, data)


def has_cloudevent_headers(headers: Headers) -> bool:
    """Binary-mode attributes (``ce-``/``ce_`` headers) or a structured or batched content type."""
    for name, value in headers:
        if name[:3].lower() in ("ce-", "ce_"):
            return True
        if name.lower() == "content-type" and value.lower().startswith(b"application/cloudevents"):
            return True
    return False


def is_structured_cloudevent(document: object) -> bool:
    """Whether parsed JSON is a structured CloudEvent, or a batch of them."""
    if type(document) is dict:
        return "specversion" in document
    return type(document) is list and bool(document) and all(type(e) is dict and "specversion" in e for e in document)


def decode_kserve(value: bytes, now: float, joiner: KServeJoiner, *, headers: HeadersIn = None) -> Decoded:
    """Decode one logger event; rows appear once both halves of an inference are in."""
    sink = DecodeSink()
    message_headers = normalise_headers(headers)
    with sink.guard(Reason.INVALID_CLOUDEVENT, value, message_headers):
        decode_kserve_into(sink, value, message_headers, now, joiner)
    return sink.finish()


def decode_kserve_into(
    sink: DecodeSink,
    value: bytes,
    headers: Headers,
    now: float,
    joiner: KServeJoiner,
    *,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> None:
    for side, half in kserve_halves(sink, value, headers, max_features):
        joiner.add_into(sink, side, half, now)


def kserve_halves(
    sink: DecodeSink, value: bytes, headers: Headers, max_features: int = DEFAULT_MAX_FEATURES
) -> list[tuple[Side, InferenceHalf]]:
    """The halves one message carries (a batch carries several), not yet joined; what
    cannot be read is refused into ``sink`` (scale-out pairs them in stage 2)."""
    try:
        events = _batched_events(value) if _is_batch(value, headers) else [value]
    except RecordError as error:
        sink.reject(error, value, headers)
        return []
    halves = []
    for event in events:
        try:
            halves.append(read_kserve_event(event, headers, sink, max_features))
        except RecordError as error:
            sink.reject(error, event, headers)
    return halves


def _is_batch(value: bytes, headers: Headers) -> bool:
    content_type = header_text(headers, "content-type") or ""
    if content_type.lower().startswith(BATCH_CONTENT_TYPE):
        return True
    # Without headers (a batch copied onto Kafka as is), the body's shape tells.
    return not has_cloudevent_headers(headers) and value.lstrip()[:1] == b"["


def _batched_events(value: bytes) -> list[bytes]:
    try:
        document = json.loads(value)
    except RecursionError:
        raise RecordError(Reason.INVALID_CLOUDEVENT, "batch: JSON nested too deeply") from None
    except ValueError as exc:
        raise RecordError(Reason.INVALID_CLOUDEVENT, f"batch: not JSON: {str(exc)[:200]}") from None
    if type(document) is not list or not document:
        raise RecordError(Reason.INVALID_CLOUDEVENT, "batch: expected a non-empty JSON array of events")
    # Each event goes through the library's structured-mode reader on its own, and is
    # its own dead-letter payload if refused.
    return [json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass") for event in document]


def read_kserve_event(
    value: bytes, headers: Headers, sink: DecodeSink, max_features: int = DEFAULT_MAX_FEATURES
) -> tuple[Side, InferenceHalf]:
    """The half one event carries. An event that cannot be identified raises; one whose
    body cannot be read is refused into ``sink`` and still returned, so its partner pairs."""
    event = _cloud_event(value, headers)
    if not event.id_given:
        raise RecordError(Reason.INVALID_CLOUDEVENT, "ce-id: required to pair request and response")
    side = _SIDES.get(event.get_type())
    if side is None:
        raise RecordError(Reason.INVALID_CLOUDEVENT, f"type {event.get_type()[:100]!r} is not a KServe inference log")
    service = _extension(event, "inferenceservicename")
    if not service:
        raise RecordError(Reason.MISSING_FIELD, "ce-inferenceservicename: required")
    namespace = _extension(event, "namespace")
    component = _extension(event, "component") or ""
    model = service if component.lower() in PREDICTOR_COMPONENTS else f"{service}-{component}"
    metadata = _metadata(event)
    status = _answer_status(event) if side is Side.RESPONSE else None
    features: list[dict[str, object]] | None = None
    predictions: list[Prediction] | None = None
    probabilities: list[tuple[float, ...] | None] | None = None
    body_version: str | None = None
    try:
        if status is None or status == STATUS_OK:
            body = _json_body(event.get_data())
            if side is Side.REQUEST:
                features = request_features(body, max_features)
                if metadata:
                    features = [{**row, **_header_features(metadata)} for row in features]
            else:
                predictions, probabilities = response_outputs(body)
                version = body.get("model_version")
                body_version = version if type(version) is str else None
    except RecordError as error:
        sink.reject(error, value, headers)
    request_id = _metadata_request_id(metadata) or event.get_id()
    half = InferenceHalf(
        key=(namespace, model, event.get_id()),
        request_id=request_id,
        model=model,
        model_namespace=namespace,
        model_version=_extension(event, "modelversion") or body_version,
        deployment_slot=_extension(event, "endpoint"),
        time=_event_seconds(event),
        features=features,
        predictions=predictions,
        payload=value,
        headers=headers,
        status=status,
        probabilities=probabilities,
    )
    return side, half


def _metadata(event: CloudEvent) -> dict[str, list[str]]:
    """The ``metadata`` extension: request headers the agent was told to pass on."""
    text = event.get_extension("metadata")
    if type(text) is not str or not text:
        return {}
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return {}  # metadata is a courtesy: a broken one costs nothing else
    if type(document) is not dict:
        return {}
    out: dict[str, list[str]] = {}
    for name, values in document.items():
        if type(values) is list:
            texts = [v for v in values if type(v) is str]
            if texts:
                out[str(name)] = texts
        elif type(values) is str:
            out[str(name)] = [values]
    return out


def _metadata_request_id(metadata: dict[str, list[str]]) -> str | None:
    for name, values in metadata.items():
        if name.lower() == REQUEST_ID_HEADER:
            return values[0] or None
    return None


def _header_features(metadata: dict[str, list[str]]) -> dict[str, object]:
    return {
        f"{HEADER_FEATURE_PREFIX}{name.lower()}": values[0]
        for name, values in metadata.items()
        if name.lower() != REQUEST_ID_HEADER
    }


def _answer_status(event: CloudEvent) -> str | None:
    """``ok`` or ``http_<code>`` from the ``statuscode`` extension; None without one."""
    code = event.get_extension("statuscode")
    if isinstance(code, bool):
        return None
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code.strip())
    if not isinstance(code, int):
        return None
    return STATUS_OK if 200 <= code < 300 else f"http_{code}"


def _cloud_event(value: bytes, headers: Headers) -> _LoggedEvent:
    json_format = JSONFormat()
    try:
        if any(name[:3].lower() == "ce_" for name, _ in headers):
            message = kafka.KafkaMessage(headers=dict(headers), key=None, value=value)
            return kafka.from_binary(message, json_format, _LoggedEvent)  # type: ignore[return-value]
        text_headers = {name: raw.decode("utf-8") for name, raw in headers}
        if any(name[:3].lower() == "ce-" for name in text_headers):
            return http.from_binary(http.HTTPMessage(text_headers, value), json_format, _LoggedEvent)  # type: ignore[return-value]
        return http.from_structured(http.HTTPMessage(text_headers, value), json_format, _LoggedEvent)  # type: ignore[return-value]
    except RecursionError:
        raise RecordError(Reason.INVALID_CLOUDEVENT, "not a CloudEvent: JSON nested too deeply") from None
    except (BaseCloudEventException, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise RecordError(Reason.INVALID_CLOUDEVENT, f"not a CloudEvent: {detail}") from None


def _extension(event: CloudEvent, name: str) -> str | None:
    value = event.get_extension(name)
    return value if type(value) is str and value else None


def _event_seconds(event: _LoggedEvent) -> float | None:
    moment = event.get_time()
    if not event.time_given or not isinstance(moment, datetime):
        return None
    try:
        return datetime_seconds(moment)
    except RecordError:
        return None


def _json_body(data: object) -> dict[str, Any]:
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except RecursionError:
            raise RecordError(Reason.INVALID_JSON, "body: JSON nested too deeply") from None
        except ValueError as exc:
            raise RecordError(Reason.INVALID_JSON, f"body: not JSON: {str(exc)[:200]}") from None
    if type(data) is not dict:
        raise RecordError(Reason.INVALID_JSON, "body: expected a JSON object")
    return data


def request_features(body: dict[str, Any], max_features: int = DEFAULT_MAX_FEATURES) -> list[dict[str, object]]:
    """Feature mappings, one per instance, of a V1 or v2 request body.

    >>> request_features({"instances": [[6.8, 2.8], [6.0, 3.4]]})
    [{'instances_0': 6.8, 'instances_1': 2.8}, {'instances_0': 6.0, 'instances_1': 3.4}]
    >>> request_features({"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [6.8, 2.8]}]})
    [{'input-0_0': 6.8, 'input-0_1': 2.8}]
    """
    inputs = body.get("inputs")
    if type(inputs) is list and inputs and all(type(t) is dict and "data" in t for t in inputs):
        tensors = [tensor_from_json(t, f"inputs[{i}]", Reason.BAD_FEATURES) for i, t in enumerate(inputs)]
        return feature_rows(tensors, max_features)
    # V1 rows, under "instances" (or the row form of TensorFlow's "inputs").
    key = "instances" if "instances" in body else "inputs"
    instances = body.get(key)
    if type(instances) is not list or not instances:
        raise RecordError(Reason.BAD_FEATURES, "body: no instances or inputs")
    return [_instance_features(key, instance, max_features) for instance in instances]


def _instance_features(key: str, instance: object, max_features: int) -> dict[str, object]:
    if type(instance) is dict:
        if len(instance) > max_features:
            raise RecordError(Reason.TOO_LARGE, f"more than {max_features} features per row")
        return instance
    if type(instance) is not list:
        return {key: instance}
    values = flattened(instance)
    if len(values) > max_features:
        raise RecordError(Reason.TOO_LARGE, f"more than {max_features} features per row")
    return {f"{key}_{j}": v for j, v in enumerate(values)}


def response_predictions(body: dict[str, Any]) -> list[Prediction]:
    """``(score, class)`` per instance of a V1 or v2 response body.

    >>> response_predictions({"predictions": [1, 0]})
    [(1.0, '1'), (0.0, '0')]
    >>> response_predictions({"outputs": [{"name": "output-0", "shape": [1], "datatype": "FP32", "data": [0.9]}]})
    [(0.9, None)]
    """
    return response_outputs(body)[0]


def response_outputs(body: dict[str, Any]) -> tuple[list[Prediction], list[tuple[float, ...] | None] | None]:
    """``(score, class)`` per instance, and each instance's multiclass probability vector
    where the body holds one (V1: a list of three or more numbers per instance, as a
    ``predict_proba`` server returns; v2: a float output of three or more values a row).

    >>> response_outputs({"predictions": [[0.1, 0.7, 0.2]]})
    ([(0.7, '1')], [(0.1, 0.7, 0.2)])
    """
    outputs = body.get("outputs")
    if type(outputs) is list:
        tensors = [tensor_from_json(t, f"outputs[{i}]", Reason.BAD_PREDICTION) for i, t in enumerate(outputs)]
        return prediction_rows(tensors), tensor_probabilities(tensors)
    predictions = body.get("predictions")
    if type(predictions) is not list or not predictions:
        raise RecordError(Reason.BAD_PREDICTION, "body: no predictions or outputs")
    parts = [prediction_parts(p) for p in predictions]
    vectors = [class_probabilities(p) for p in predictions]
    return parts, vectors if any(v is not None for v in vectors) else None
