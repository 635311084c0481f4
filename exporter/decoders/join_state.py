"""The request/response join buffers (KServe, Seldon) as JSON documents, for checkpoints.

A half that waits for its partner when the aggregator checkpoints came from a message the
checkpoint's offsets already cover: after a crash that message is not read again, so the
half must come back with the state or its partner can never pair. A joiner's state is a
list of documents — first a header with the joiner's counters, then one document per
waiting half in arrival order, its raw payload and headers in base64 (the dead letter of
an unmatched response needs them byte for byte). Each half keeps its arrival time, so
its TTL runs on across the restart rather than starting over.

>>> from exporter.decoders.kserve import KServeJoiner
>>> joiner = KServeJoiner()
>>> documents = export_joiner(joiner)
>>> import_joiner(KServeJoiner(), documents)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from exporter.decoders.inference_pairs import InferenceHalf, InferenceJoiner
from exporter.decoders.joiner import Side, Waiting

STATE_VERSION = 1


def export_joiner(joiner: InferenceJoiner) -> list[str]:
    """The joiner's counters and waiting halves, oldest first, as JSON texts."""
    header = json.dumps({"version": STATE_VERSION, "counts": joiner.halves.counts()})
    return [header, *(_half_document(waiting) for waiting in joiner.halves.waiting())]


def import_joiner(joiner: InferenceJoiner, documents: Sequence[str]) -> None:
    """Put saved counters and halves back into ``joiner`` (replacing what it held)."""
    if not documents:
        return
    header = json.loads(documents[0])
    if header.get("version") != STATE_VERSION:
        raise ValueError(f"join buffer state version {header.get('version')!r} is not {STATE_VERSION}")
    joiner.halves.restore([_waiting(json.loads(text)) for text in documents[1:]], header.get("counts", {}))


def half_document(waiting: Waiting[InferenceHalf]) -> str:
    """One waiting half as a JSON text (scale-out's stage 1 also ships unjoined halves so)."""
    return _half_document(waiting)


def half_from_document(text: str) -> Waiting[InferenceHalf]:
    """The inverse of :func:`half_document`."""
    return _waiting(json.loads(text))


def _half_document(waiting: Waiting[InferenceHalf]) -> str:
    half = waiting.half
    key = list(half.key) if isinstance(half.key, tuple) else half.key
    document: dict[str, Any] = {
        "key": key,
        "side": waiting.side.value,
        "since": waiting.since,
        "request_id": half.request_id,
        "model": half.model,
        "model_namespace": half.model_namespace,
        "model_version": half.model_version,
        "fallback_version": half.fallback_version,
        "time": half.time,
        # Features and predictions are JSON values already: decoders build them from JSON
        # or from tensors whose elements are numbers, booleans and text.
        "features": half.features,
        "predictions": [list(p) for p in half.predictions] if half.predictions is not None else None,
        "payload": base64.b64encode(half.payload).decode("ascii"),
        "headers": [[name, base64.b64encode(value).decode("ascii")] for name, value in half.headers],
    }
    return json.dumps(document, ensure_ascii=False)


def _waiting(document: dict[str, Any]) -> Waiting[InferenceHalf]:
    key = document["key"]
    predictions = document["predictions"]
    half = InferenceHalf(
        key=tuple(key) if isinstance(key, list) else key,
        request_id=document["request_id"],
        model=document["model"],
        model_namespace=document["model_namespace"],
        model_version=document["model_version"],
        fallback_version=document["fallback_version"],
        time=document["time"],
        features=document["features"],
        predictions=[(p[0], p[1]) for p in predictions] if predictions is not None else None,
        payload=base64.b64decode(document["payload"]),
        headers=tuple((name, base64.b64decode(value)) for name, value in document["headers"]),
    )
    return Waiting(half.key, Side(document["side"]), half, float(document["since"]))
