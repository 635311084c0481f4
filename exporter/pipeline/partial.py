"""What a fold produces: a model's partial summary, slot by slot.

A :class:`ModelPartial` holds, for every configured version of one model, the event-time
slot buckets of predictions and of labels (with each slot's newest event time), the serving
counters (errors, latency histogram) and the rows the label join needs; and, for the model,
its label rows and its KServe/Seldon request/response halves not yet paired. Single mode
folds each poll into partials and merges them at once (:mod:`exporter.pipeline.owner`);
scale-out's stage 1 folds a source range into partials, publishes them
(:mod:`exporter.aggregator.scaleout.wire`), and the model's owner merges them in stage 2
with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from exporter.decoders.inference_pairs import InferenceHalf
from exporter.decoders.join_state import half_document, half_from_document
from exporter.decoders.joiner import Side, Waiting
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.packed import PackedBucket
from exporter.pipeline.request_keys import request_keys
from exporter.pipeline.snapshot import HistogramState

PREDICTION_ROLE = "predictions"
LABEL_ROLE = "labels"
# Performance slots folded from pairs a join shard made (scale-out's ``kafka.join_shards``):
# added to the owner's windows as joined pairs are, without the lateness rule of predictions.
PERFORMANCE_ROLE = "performance"

# The prediction columns the label join needs, per version: each request's id and its key
# (:mod:`exporter.pipeline.request_keys`), which is what the join matches on. The ids stay
# only to be written for a replica of a build before keys (scale-out wire formats 1 and 2).
JOIN_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("request_id", pa.string()),
        ("request_key", pa.uint64()),
        ("timestamp", pa.float64()),
        ("prediction_score", pa.float64()),
        ("prediction_class", pa.string()),
    ]
)
# A model's label rows, as the join needs them: the decoded label columns and each request's key.
LABEL_JOIN_SCHEMA = pa.schema(
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("request_key", pa.uint64(), nullable=False),
        pa.field("label_value", pa.float64()),
        pa.field("label_class", pa.string()),
        pa.field("timestamp", pa.float64(), nullable=False),
    ]
)


@dataclass
class VersionPartial:
    """One model version's part of a model partial."""

    profile_created_at: float
    # Slot start → records, features, prediction; → label summary, labels. Folded here as
    # buckets; read from scale-out's wire as they travel, packed (merged without unpacking).
    predictions: dict[int, Bucket | PackedBucket] = field(default_factory=dict)
    labels: dict[int, Bucket | PackedBucket] = field(default_factory=dict)
    errors: int = 0
    latency: HistogramState | None = None
    # (role, slot start) → the newest event time in that bucket: what moves the owner's
    # lateness horizon and the staleness timestamps, bucket by bucket.
    newest: dict[tuple[str, int], float] = field(default_factory=dict)
    join: pa.Table | None = None  # JOIN_SCHEMA rows of this version
    # Slot start → performance and loss of pairs joined elsewhere (a join shard's report).
    performance: dict[int, Bucket | PackedBucket] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(b.records for b in self.predictions.values())

    def newest_of(self, role: str) -> dict[int, float]:
        """Slot start → newest event time, for one role."""
        return {start: time for (kind, start), time in self.newest.items() if kind == role}


@dataclass(frozen=True)
class CarriedHalf:
    """A KServe or Seldon request/response half on its way to its model's owner, unjoined."""

    format: str  # "kserve" or "seldon": which join buffer it goes to
    topic: str  # the source topic: refusals are counted under it
    document: str  # the half as join_state writes a waiting one
    # The inference's id in the key its two halves pair on, where stage 1 read it: what routes
    # both to one join shard (not sent: the document holds the key).
    pairs_on: str = field(default="", compare=False)

    @classmethod
    def of(cls, format: str, topic: str, side: Side, half: InferenceHalf) -> CarriedHalf:
        return cls(format, topic, half_document(Waiting(half.key, side, half, 0.0)), _inference_id(half.key))

    def half(self) -> tuple[Side, InferenceHalf]:
        waiting = half_from_document(self.document)
        return waiting.side, waiting.half


@dataclass(frozen=True)
class JoinReport:
    """What one join shard of a model did since its last report: pairs made, entries that left
    unmatched (TTL or overflow), and the predictions waiting there now."""

    shard: int
    joined: int
    unmatched: int
    pending: int


@dataclass
class ModelPartial:
    model: str
    slot_seconds: int
    versions: dict[str, VersionPartial] = field(default_factory=dict)
    labels: pa.Table | None = None  # LABEL_JOIN_SCHEMA rows of the model
    halves: list[CarriedHalf] = field(default_factory=list)  # in source order
    join_reports: list[JoinReport] = field(default_factory=list)  # join shards' reports to the model's owner


@dataclass
class PipelinePartial:
    """Records consumed (by format), refused (by reason) and dropped as duplicates in one batch
    or source range."""

    consumed: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, format)
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, reason)
    duplicates: dict[str, int] = field(default_factory=dict)  # topic → copies dropped


def concat(current: pa.Table | None, more: pa.Table) -> pa.Table:
    """``more`` appended to ``current`` (chunks joined, no copy)."""
    return more if current is None else pa.concat_tables([current, more])


def join_rows(model: str, rows: pa.Table) -> pa.Table:
    """``JOIN_SCHEMA`` rows of one model's predictions (``model_version``, ``request_id`` —
    never null —, ``timestamp``, ``prediction_score``, ``prediction_class``): keyed."""
    keys = pa.array(request_keys(model, rows.column("request_id")), pa.uint64())
    return pa.table(
        [keys if name == "request_key" else rows.column(name) for name in JOIN_SCHEMA.names], schema=JOIN_SCHEMA
    )


def label_rows(model: str, labels: pa.Table) -> pa.Table:
    """``LABEL_JOIN_SCHEMA`` rows of one model's labels (``LABEL_SCHEMA`` columns): keyed."""
    keys = pa.array(request_keys(model, labels.column("request_id")), pa.uint64())
    return pa.table(
        [keys if name == "request_key" else labels.column(name) for name in LABEL_JOIN_SCHEMA.names],
        schema=LABEL_JOIN_SCHEMA,
    )


def _inference_id(key: object) -> str:
    """The id in a half's pairing key: the third item of KServe's (namespace, model, CloudEvent
    id) and of Seldon's (namespace, model, request id[, kind]). Both halves share it, and a
    one-row request's record is labelled by it (unless a request-id header names it otherwise),
    so routing a pair by it sends the pair and its label to the same join shard."""
    if isinstance(key, tuple) and len(key) > 2:
        return str(key[2])
    return "\x1f".join(map(str, key)) if isinstance(key, tuple) else str(key)
