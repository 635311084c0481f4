"""Decoded records back onto the wire: NDJSON or Arrow IPC messages, keyed by model.

The sidecar decodes what it receives (native JSON, KServe CloudEvents) into the tables of
:mod:`exporter.records` and forwards them in one of the formats the aggregator's own
decoders read (:mod:`exporter.decoders.detect`):

- ``ndjson`` — DESIGN.md wire format 1, one native record per line; the prediction is written
  as ``{"score": …, "class": …}``, or as its probability vector where the record kept one and
  the vector names the same class (it decodes back to the same score and class), null and
  non-finite values left out (both mean missing).
- ``arrow`` — wire format 2, one IPC stream per message with the table's own columns
  (``prediction_score``/``prediction_class``, features as ``f.<name>``, a probability vector
  as ``p.<k>``).

Each message holds the records of one model, at most ``max_records`` of them, and is keyed
by the model name, so one model's records stay in order on one partition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from exporter.records import FEATURE_PREFIX, ipc_bytes, probability_column

Format = Literal["ndjson", "arrow"]
_OPTIONAL = ("model_version", "model_namespace", "request_id", "latency_ms", "status")


@dataclass(frozen=True)
class EncodedMessage:
    key: bytes
    value: bytes
    records: int


def encode(tables: Iterable[pa.Table], fmt: Format, max_records: int) -> list[EncodedMessage]:
    """Messages for ``tables``: grouped by model, at most ``max_records`` records each."""
    by_model: dict[str, list[pa.Table]] = {}
    for table in tables:
        if table.num_rows == 0:
            continue
        for model in table.column("model").unique().to_pylist():
            part = table if _single_model(table) else table.filter(pc.equal(table.column("model"), model))
            by_model.setdefault(model, []).append(part)
    messages: list[EncodedMessage] = []
    for model, parts in by_model.items():
        key = model.encode()
        if fmt == "arrow":
            for chunk in _arrow_chunks(parts, max_records):
                messages.append(EncodedMessage(key, ipc_bytes(chunk), chunk.num_rows))
        else:
            for lines in _line_chunks(parts, max_records):
                messages.append(EncodedMessage(key, b"\n".join(lines), len(lines)))
    return messages


def _single_model(table: pa.Table) -> bool:
    column = table.column("model")
    return column.null_count == 0 and len(column.unique()) == 1


# ------------------------------------------------------------------ Arrow IPC


def _arrow_chunks(parts: list[pa.Table], max_records: int) -> Iterator[pa.Table]:
    for table in _concatenated(parts):
        for start in range(0, table.num_rows, max_records):
            yield table.slice(start, max_records)


def _concatenated(parts: list[pa.Table]) -> list[pa.Table]:
    """One table when the parts' columns unify; otherwise the parts as they are.

    Requests may disagree on a feature's type (a number in one, text in another); such
    parts go out in separate messages rather than being coerced here.
    """
    if len(parts) == 1:
        return parts
    try:
        return [pa.concat_tables(parts, promote_options="default").combine_chunks()]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return parts


# ------------------------------------------------------------------ NDJSON


def _line_chunks(parts: list[pa.Table], max_records: int) -> Iterator[list[bytes]]:
    lines: list[bytes] = []
    for table in parts:
        for row in table.to_pylist():
            lines.append(native_line(row))
            if len(lines) == max_records:
                yield lines
                lines = []
    if lines:
        yield lines


def native_line(row: dict[str, object]) -> bytes:
    """One decoded row as a native JSON record (DESIGN.md wire format 1).

    >>> native_line({"model": "fraud", "model_version": "7", "model_namespace": None, "request_id": "r-1",
    ...              "timestamp": 1.5, "prediction_score": 0.9, "prediction_class": None, "latency_ms": None,
    ...              "status": "ok", "f.amount": 12.5, "f.country": "DE", "f.age": float("nan")})
    b'{"model":"fraud","timestamp":1.5,"model_version":"7","request_id":"r-1","status":"ok","prediction":{"score":0.9},"features":{"amount":12.5,"country":"DE"}}'
    """
    record: dict[str, object] = {"model": row["model"], "timestamp": row["timestamp"]}
    for name in _OPTIONAL:
        value = row.get(name)
        if _present(value):
            record[name] = value
    prediction: dict[str, object] = {}
    if _present(row.get("prediction_score")):
        prediction["score"] = row["prediction_score"]
    if _present(row.get("prediction_class")):
        prediction["class"] = row["prediction_class"]
    vector = _probability_vector(row)
    if vector is not None and prediction.get("class", str(_argmax(vector))) == str(_argmax(vector)):
        # The vector decodes back to the same score and class, and keeps the probabilities.
        record["prediction"] = vector
    elif prediction:
        record["prediction"] = prediction
    record["features"] = {
        name[len(FEATURE_PREFIX) :]: value
        for name, value in row.items()
        if name.startswith(FEATURE_PREFIX) and _present(value)
    }
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def _probability_vector(row: dict[str, object]) -> list[float] | None:
    """The row's multiclass probability vector (its ``p.k`` columns), when every value is there."""
    values = []
    position = 0
    while (name := probability_column(position)) in row:
        value = row[name]
        if not isinstance(value, float) or not math.isfinite(value):
            return None
        values.append(value)
        position += 1
    return values if len(values) >= 3 else None


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def _present(value: object) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))
