"""The request/response join buffers (KServe, Seldon) as JSON documents, for checkpoints.

A half that waits for its partner when the aggregator checkpoints came from a message the
checkpoint's offsets already cover: after a crash that message is not read again, so the
half must come back with the state or its partner can never pair. A joiner's state is a
list of documents — first a header with the joiner's counters, then one document per
waiting half in arrival order, its raw payload and headers in base64 (the dead letter of
an unmatched response needs them byte for byte). Each half keeps its arrival time, so
its TTL runs on across the restart rather than starting over. The header also keeps what
each model has shown and learned (logger modes, :mod:`exporter.decoders.inference_pairs`) and
the ids settled within the TTL, whose copies are duplicates.

Documents written before the deployment slot had its own field name it ``fallback_version``;
they are read as the slot.

>>> from exporter.decoders.kserve import KServeJoiner
>>> joiner = KServeJoiner()
>>> documents = export_joiner(joiner)
>>> import_joiner(KServeJoiner(), documents)
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from typing import Any

from exporter.decoders.inference_pairs import InferenceHalf, InferenceJoiner, half_digest
from exporter.decoders.joiner import Settled, Side, Waiting

STATE_VERSION = 1


def export_joiner(joiner: InferenceJoiner) -> list[str]:
    """The joiner's counters and waiting halves, oldest first, as JSON texts."""
    header = json.dumps(
        {
            "version": STATE_VERSION,
            "counts": joiner.halves.counts(),
            "models": joiner.export_models(),
            "settled": [[_key_json(s.key), s.since, s.digests] for s in joiner.halves.settled()],
        }
    )
    return [header, *(_half_document(waiting) for waiting in joiner.halves.waiting())]


def import_joiner(joiner: InferenceJoiner, documents: Sequence[str]) -> None:
    """Put saved counters and halves back into ``joiner`` (replacing what it held)."""
    if not documents:
        return
    header = json.loads(documents[0])
    if header.get("version") != STATE_VERSION:
        raise ValueError(f"join buffer state version {header.get('version')!r} is not {STATE_VERSION}")
    settled = [Settled(_key(key), float(since), dict(digests)) for key, since, digests in header.get("settled", [])]
    joiner.halves.restore(
        [_waiting(json.loads(text)) for text in documents[1:]], header.get("counts", {}), settled, half_digest
    )
    joiner.import_models(header.get("models", {}))


def half_document(waiting: Waiting[InferenceHalf]) -> str:
    """One waiting half as a JSON text (scale-out's stage 1 also ships unjoined halves so)."""
    return _half_document(waiting)


def half_from_document(text: str) -> Waiting[InferenceHalf]:
    """The inverse of :func:`half_document`."""
    return _waiting(json.loads(text))


def _key_json(key: object) -> object:
    return list(key) if isinstance(key, tuple) else key


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _half_document(waiting: Waiting[InferenceHalf]) -> str:
    half = waiting.half
    document: dict[str, Any] = {
        "key": _key_json(half.key),
        "side": waiting.side.value,
        "since": waiting.since,
        "request_id": half.request_id,
        "model": half.model,
        "model_namespace": half.model_namespace,
        "model_version": half.model_version,
        "deployment_slot": half.deployment_slot,
        "status": half.status,
        "time": half.time,
        # Features and predictions are JSON values already: decoders build them from JSON
        # or from tensors whose elements are numbers, booleans and text.
        "features": half.features,
        "predictions": [list(p) for p in half.predictions] if half.predictions is not None else None,
        "probabilities": [list(v) if v is not None else None for v in half.probabilities]
        if half.probabilities is not None
        else None,
        "payload": _text_of(half.payload),
        "headers": [[name, _text_of(value)] for name, value in half.headers],
    }
    return json.dumps(document, ensure_ascii=False)


# base64 through binascii directly: ``base64.b64decode``'s wrapper costs four times the decoding
# itself for a header's few bytes, and a half carries a dozen (scale-out ships every half so).
def _text_of(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _bytes_of(text: str) -> bytes:
    return binascii.a2b_base64(text)


def _waiting(document: dict[str, Any]) -> Waiting[InferenceHalf]:
    predictions = document["predictions"]
    half = InferenceHalf(
        key=_key(document["key"]),
        request_id=document["request_id"],
        model=document["model"],
        model_namespace=document["model_namespace"],
        model_version=document["model_version"],
        deployment_slot=document.get("deployment_slot", document.get("fallback_version")),
        time=document["time"],
        features=document["features"],
        predictions=[(p[0], p[1]) for p in predictions] if predictions is not None else None,
        payload=_bytes_of(document["payload"]),
        headers=tuple((name, _bytes_of(value)) for name, value in document["headers"]),
        status=document.get("status"),
        probabilities=_probabilities(document.get("probabilities")),
    )
    return Waiting(half.key, Side(document["side"]), half, float(document["since"]))


def _probabilities(vectors: list[list[float] | None] | None) -> list[tuple[float, ...] | None] | None:
    """A waiting response's probability vectors (absent in documents written before them)."""
    if vectors is None:
        return None
    return [tuple(float(x) for x in v) if v is not None else None for v in vectors]
