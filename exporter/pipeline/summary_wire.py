"""The ``model-health-summaries`` message: one model's mergeable summary of one time bucket.

A sidecar in edge mode (``kafka.mode: summaries``) folds its model's records into the
reference profile's frozen bins and publishes, per event-time bucket, one message instead
of the records; the aggregator adds such messages into its windows exactly as it adds
its own buckets (summaries add: :class:`~exporter.pipeline.windows.Bucket`). The same format
serves any producer of partial summaries, such as aggregator replicas re-keying by model.

Wire format, version 1
----------------------

Kafka **key**: the model name (UTF-8), so every summary of a model lands on one partition.
Kafka **header** ``content-type: application/vnd.model-health.summary.v1+arrow``.

**Value**: one Arrow IPC *stream* (``pyarrow.ipc.open_stream``) holding one table, one row
per summary, with the columns of :data:`SUMMARY_SCHEMA`:

=====================  ===============  =====================================================
column                 type             meaning
=====================  ===============  =====================================================
``part``               string           ``feature``, ``prediction``, ``label``, ``loss`` or
                                        ``performance``
``name``               string           the feature name (``""`` for the other parts)
``counts``             list<int64>      counts per bin, in the profile's bin order: numeric
                                        columns the fine bins (two open tails included),
                                        categorical ones the top-K categories then
                                        ``__other__``
``missing``            int64            missing values (null, NaN, ±inf)
``total``              string           exact sum of the present values (numeric only;
``total_squares``      string           ``ExactSum.to_text``), and of their squares
``minimum``            float64          smallest and largest present value (numeric only;
``maximum``            float64          ±inf when none)
``lower_tail_total``   string           exact sums of the values in the open tails
``upper_tail_total``   string           (numeric only)
``payload``            string           ``performance`` rows only: the performance summary
                                        as JSON (``to_dict``)
=====================  ===============  =====================================================

Bins are **not** carried: they come from the model's reference profile, which both sides
load; ``profile_created_at`` names the profile the counts were folded against, and a
consumer holding another profile must refuse the message.

The schema **metadata** key ``model_health.summary`` holds a JSON object:

- ``format_version`` — 1;
- ``model``, ``model_version``, ``model_namespace`` (may be null) — whose summary it is;
- ``bucket_start`` — epoch seconds, a multiple of ``bucket_seconds``; the summary covers
  records whose event time ``t`` has ``bucket_start <= t < bucket_start + bucket_seconds``;
- ``bucket_seconds`` — the bucket width (it must divide the consumer's bucket width);
- ``records`` — predictions folded; ``labels`` — labels folded;
- ``profile_created_at`` — ``created_at`` of the profile whose bins were used;
- ``producer_id`` — unique per producer process (a new one at each start);
- ``sequence`` — 0, 1, 2, … per ``producer_id``, one per message.

A message is a **delta**: the records folded since the producer's previous message for that
bucket. A producer normally sends one message per bucket, once the bucket has closed; records
that arrive for it later go out in a further message with the same ``bucket_start``. A
consumer therefore *adds* every message into its bucket, and drops a message whose
``(producer_id, sequence)`` it has already added (a redelivery).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from detectors.performance import ClassificationSummary, RegressionSummary
from detectors.profile import SUMMARY_COUNT_FIELDS, ReferenceProfile, summary_counts, summary_with_counts
from detectors.summary import ColumnSummary
from exporter.pipeline.buckets import Bucket

FORMAT_VERSION = 1
METADATA_KEY = b"model_health.summary"
CONTENT_TYPE = "application/vnd.model-health.summary.v1+arrow"
CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
PARTS = ("feature", "prediction", "label", "loss", "performance")

SUMMARY_SCHEMA = pa.schema(
    [
        ("part", pa.string()),
        ("name", pa.string()),
        *SUMMARY_COUNT_FIELDS,
        ("payload", pa.string()),
    ]
)


class SummaryFormatError(ValueError):
    """A message that is not a version-1 summary, or not one of the profile at hand."""


@dataclass(frozen=True)
class SummaryHeader:
    """Who, when and which message: the metadata of one summary message."""

    model: str
    model_version: str
    bucket_start: int
    bucket_seconds: int
    producer_id: str
    sequence: int
    records: int
    labels: int = 0
    model_namespace: str | None = None
    profile_created_at: float | None = None
    format_version: int = FORMAT_VERSION

    @property
    def key(self) -> bytes:
        """The Kafka key: the model name."""
        return self.model.encode()


def encode_summary(header: SummaryHeader, bucket: Bucket) -> bytes:
    """One summary message's value.

    >>> from detectors.binning import CategoricalBins
    >>> from detectors.summary import CategoricalSummary
    >>> import numpy as np
    >>> bucket = Bucket(records=3, features={"country": CategoricalSummary.fold(CategoricalBins(("DE",)), np.array(["DE", "FR", None], dtype=object))})
    >>> value = encode_summary(SummaryHeader("fraud", "7", 1_800_000_000, 60, "pod-a", 0, records=3), bucket)
    >>> read_summary_header(value).records, read_summary_header(value).bucket_start
    (3, 1800000000)
    """
    if header.format_version != FORMAT_VERSION:
        raise ValueError(f"this build writes summary format {FORMAT_VERSION}")
    rows: list[dict[str, Any]] = [_row("feature", name, summary) for name, summary in bucket.features.items()]
    for part in ("prediction", "label", "loss"):
        summary = getattr(bucket, part)
        if summary is not None:
            rows.append(_row(part, "", summary))
    if bucket.performance is not None:
        rows.append({"part": "performance", "name": "", "payload": json.dumps(bucket.performance.to_dict())})
    metadata = {**asdict(header), "records": bucket.records, "labels": bucket.labels}
    table = pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA).replace_schema_metadata(
        {METADATA_KEY: json.dumps(metadata, allow_nan=False).encode()}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _row(part: str, name: str, summary: ColumnSummary) -> dict[str, Any]:
    return {"part": part, "name": name, **summary_counts(summary)}


def kafka_headers(header: SummaryHeader) -> tuple[tuple[str, bytes], ...]:
    """Headers to send with a summary message."""
    return (CONTENT_TYPE_HEADER,)


def _read_table(value: bytes) -> pa.Table:
    try:
        with pa.ipc.open_stream(pa.BufferReader(value)) as reader:
            table = reader.read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SummaryFormatError(f"not an Arrow IPC stream: {str(exc)[:200]}") from None
    return table


def _header_of(table: pa.Table) -> SummaryHeader:
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise SummaryFormatError("no model_health.summary metadata: not a summary message")
    try:
        data = json.loads(raw)
    except ValueError:
        raise SummaryFormatError("summary metadata is not JSON") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise SummaryFormatError(f"summary format {version!r} is not {FORMAT_VERSION}")
    try:
        header = SummaryHeader(**data)
    except TypeError as exc:
        raise SummaryFormatError(f"summary metadata: {exc}") from None
    _check_header(header)
    return header


def _check_header(header: SummaryHeader) -> None:
    if not isinstance(header.model, str) or not header.model or not isinstance(header.model_version, str):
        raise SummaryFormatError("summary metadata: model and model_version must be text")
    for name in ("bucket_start", "bucket_seconds", "sequence", "records", "labels"):
        value = getattr(header, name)
        if type(value) is not int or value < 0:
            raise SummaryFormatError(f"summary metadata: {name} must be a non-negative integer")
    if header.bucket_seconds == 0 or header.bucket_start % header.bucket_seconds:
        raise SummaryFormatError("summary metadata: bucket_start must be a multiple of a positive bucket_seconds")


def read_summary_header(value: bytes) -> SummaryHeader:
    """The metadata alone, e.g. to route a message to its model before loading bins."""
    return _header_of(_read_table(value))


def decode_summary(value: bytes, profile: ReferenceProfile) -> tuple[SummaryHeader, Bucket]:
    """The header and the bucket of one message, rebuilt over ``profile``'s bins."""
    table = _read_table(value)
    header = _header_of(table)
    meta = profile.metadata
    if (header.model, header.model_version) != (meta.model, meta.model_version):
        raise SummaryFormatError(
            f"summary of {header.model} v{header.model_version}, profile of {meta.model} v{meta.model_version}"
        )
    if header.profile_created_at is not None and not math.isclose(
        header.profile_created_at, meta.created_at, rel_tol=0, abs_tol=1e-6
    ):
        raise SummaryFormatError("summary was folded against another profile (profile_created_at differs)")
    if not set(SUMMARY_SCHEMA.names) <= set(table.column_names):
        raise SummaryFormatError("summary table lacks columns")
    features: dict[str, ColumnSummary] = {}
    parts: dict[str, Any] = {}
    for row in table.to_pylist():
        part, name = row["part"], row["name"]
        if part == "feature":
            reference = profile.features.get(name)
            if reference is None:
                raise SummaryFormatError(f"feature {name!r} is not in the profile")
            features[name] = _summary(row, reference, f"feature {name!r}")
        elif part == "performance":
            summary_cls = ClassificationSummary if meta.task == "classification" else RegressionSummary
            try:
                parts["performance"] = summary_cls.from_dict(json.loads(row["payload"]))
            except (TypeError, KeyError, ValueError) as exc:
                raise SummaryFormatError(f"performance: {exc}") from None
        elif part in ("prediction", "label", "loss"):
            reference = getattr(profile, part)
            if reference is None:
                raise SummaryFormatError(f"the profile has no {part} summary")
            parts[part] = _summary(row, reference, part)
        else:
            raise SummaryFormatError(f"unknown part {part!r}")
    bucket = Bucket(
        records=header.records,
        features=features,
        prediction=parts.get("prediction"),
        label=parts.get("label"),
        performance=parts.get("performance"),
        loss=parts.get("loss"),
        labels=header.labels,
    )
    return header, bucket


def _summary(row: dict[str, Any], reference: ColumnSummary, what: str) -> ColumnSummary:
    counts = row["counts"]
    # C-level scans (`in`, `min`), not a generator: a partial of many buckets holds thousands of rows.
    if counts is None or len(counts) != reference.counts.size or None in counts or min(counts, default=0) < 0:
        raise SummaryFormatError(f"{what}: expected {reference.counts.size} non-negative counts")
    if row["missing"] is None or row["missing"] < 0:
        raise SummaryFormatError(f"{what}: missing must be a non-negative count")
    try:
        return summary_with_counts(row, reference.bins)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SummaryFormatError(f"{what}: {exc}") from None
