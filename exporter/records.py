"""The decoded form every wire format is turned into, and the reasons a record is refused.

Decoders (one per wire format) turn raw messages into Arrow tables with these columns,
so everything downstream — windows, label join, the sidecar's forwarder — reads one
shape. Feature ``x`` travels as column ``f.x``: float64 when the decoder saw only
numbers (and nulls), string otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import pyarrow as pa

FEATURE_PREFIX = "f."
# A multiclass prediction logged as a probability vector keeps it: position ``k`` travels as
# column ``p.k`` (float64), beside the predicted class ``k`` the decoders name it by
# (:func:`exporter.decoders.field_values.class_probabilities`). The live multiclass estimate
# reads them (:mod:`exporter.pipeline.class_scores`); nothing else does.
PROBABILITY_PREFIX = "p."

# Columns every decoded prediction table has, in this order, before its f.* columns.
PREDICTION_FIELDS = (
    pa.field("model", pa.string(), nullable=False),
    pa.field("model_version", pa.string()),  # an explicit version, as the producer names it
    # Where the producer served it, when it names no version: KServe's endpoint (``default``,
    # ``canary``). Only the configuration can map a slot to a version
    # (:mod:`exporter.pipeline.model_versions`).
    pa.field("deployment_slot", pa.string()),
    pa.field("model_namespace", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("timestamp", pa.float64(), nullable=False),  # event time, epoch seconds
    pa.field("prediction_score", pa.float64()),
    pa.field("prediction_class", pa.string()),
    pa.field("latency_ms", pa.float64()),
    pa.field("status", pa.string()),
)
PREDICTION_COLUMNS = tuple(f.name for f in PREDICTION_FIELDS)

LABEL_SCHEMA = pa.schema(
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("label_value", pa.float64()),  # numeric labels (regression, or 0/1)
        pa.field("label_class", pa.string()),  # the label as text: the class for classifiers
        pa.field("timestamp", pa.float64(), nullable=False),
    ]
)


class Reason(str, Enum):
    """Why a record was refused; the value is the ``reason`` label and dead-letter header."""

    INVALID_JSON = "invalid_json"
    INVALID_ARROW = "invalid_arrow"
    INVALID_PROTOBUF = "invalid_protobuf"
    INVALID_CLOUDEVENT = "invalid_cloudevent"
    UNKNOWN_FORMAT = "unknown_format"
    MISSING_FIELD = "missing_field"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_PREDICTION = "bad_prediction"
    BAD_FEATURES = "bad_features"
    BAD_LABEL = "bad_label"
    BAD_FEATURE_VALUE = "bad_feature_value"  # e.g. text where the profile expects a number
    UNKNOWN_MODEL = "unknown_model"
    SHAPE_MISMATCH = "shape_mismatch"  # OIP tensors whose shapes disagree
    UNMATCHED_RESPONSE = "unmatched_response"  # KServe response whose request never came
    TOO_LARGE = "too_large"


@dataclass(frozen=True)
class Rejected:
    """One refused message (or record inside a batch), kept whole for the dead-letter topic."""

    reason: Reason
    detail: str
    payload: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Decoded:
    """What a decoder made of one or more messages."""

    predictions: list[pa.Table] = field(default_factory=list)
    labels: list[pa.Table] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0  # copies of an inference already taken, dropped (request/response halves)

    def extend(self, other: Decoded) -> None:
        self.predictions.extend(other.predictions)
        self.labels.extend(other.labels)
        self.rejected.extend(other.rejected)
        self.duplicates += other.duplicates

    @property
    def prediction_rows(self) -> int:
        return sum(t.num_rows for t in self.predictions)


def feature_column(name: str) -> str:
    return FEATURE_PREFIX + name


def probability_column(position: int | str) -> str:
    return f"{PROBABILITY_PREFIX}{position}"


def feature_names(table: pa.Table) -> list[str]:
    return [c[len(FEATURE_PREFIX) :] for c in table.column_names if c.startswith(FEATURE_PREFIX)]


def ipc_bytes(table: pa.Table) -> bytes:
    """A table as one Arrow IPC stream (refused rows in a dead letter keep their types; a
    partial's tables; the sidecar's forwarded batches)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
