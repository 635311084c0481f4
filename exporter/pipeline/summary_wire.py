"""The ``model-health-summaries`` message: one model's mergeable summary of one time bucket.

A sidecar in edge mode (``kafka.mode: summaries``) folds its model's records into the
reference profile's frozen bins and publishes, per event-time bucket, one message instead
of the records; the aggregator adds such messages into its windows exactly as it adds
its own buckets (summaries add: :class:`~exporter.pipeline.windows.Bucket`). The same format
serves any producer of partial summaries, such as aggregator replicas re-keying by model.

Wire format, version 2 (written) and 1 (still read)
---------------------------------------------------

Kafka **key**: the model name (UTF-8), so every summary of a model lands on one partition.
Kafka **header** ``content-type: application/vnd.model-health.summary.v1+arrow``: it names the
message family for routing; the version is ``format_version`` in the metadata below.

**Value**: one Arrow IPC *stream* (``pyarrow.ipc.open_stream``) holding one table, one row
per summary. Version 2, :data:`SUMMARY_SCHEMA`, the counts and sums packed as the windows keep
them (:mod:`exporter.pipeline.packed`):

=====================  ===============  =====================================================
column                 type             meaning
=====================  ===============  =====================================================
``part``               string           ``feature``, ``prediction``, ``label``, ``loss`` or
                                        ``performance``
``name``               string           the feature name (``""`` for the other parts)
``counts_size``        int64            bins: numeric columns the fine bins (two open tails
                                        included), categorical ones the top-K categories
                                        then ``__other__``, in the profile's order
``counts_form``        string           ``dense`` (every count), ``bitmap`` (the nonzero
                                        counts, placed by one bit per bin) or ``positions``
                                        (the nonzero counts and their uint32 positions)
``counts_width``       int8             bytes per stored count: 1, 2 or 4 (little-endian)
``counts_values``      binary           the stored counts
``counts_where``       binary           the positions or the bitmap (``np.packbits``); null
                                        when dense
``exception_at``       binary           uint32 indices into the stored counts that did not
``exception_values``   binary           fit the width (stored there as 0), and their int64
                                        counts
``missing``            int64            missing values (null, NaN, ±inf)
``minimum``            float64          smallest and largest present value (numeric only;
``maximum``            float64          ±inf when none)
``sums``               binary           numeric only: the exact sums (``ExactSum``) of the
``sums_ends``          binary           values, their squares, the lower and the upper tail —
``sums_shifts``        binary           each numerator (× 2**-1126) shifted right by its
``sums_infinities``    binary           trailing zero bits (``sums_shifts``, uint16) as
                                        little-endian two's complement, back to back
                                        (ending at ``sums_ends``, uint32); ``sums_infinities``
                                        the int64 pairs of ±inf terms, null when none
``payload``            string           ``performance`` rows only: the performance summary
                                        as JSON (``to_dict``)
=====================  ===============  =====================================================

Version 1 (:data:`SUMMARY_SCHEMA_V1`) had ``counts`` as list<int64> and the sums as text
(``ExactSum.to_text``): about six times the bytes for a busy bucket, and more at low traffic.
A producer can still write it (``SummaryHeader(format_version=1)``) while consumers of version
1 alone remain, during a rolling upgrade: upgrade the consumers first.

Bins are **not** carried: they come from the model's reference profile, which both sides
load; ``profile_created_at`` names the profile the counts were folded against, and a
consumer holding another profile must refuse the message.

The schema **metadata** key ``model_health.summary`` holds a JSON object:

- ``format_version`` — 2 (or 1);
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

import numpy as np
import pyarrow as pa

from detectors.profile import (
    SUMMARY_COUNT_FIELDS,
    ReferenceProfile,
    performance_from_json,
    summary_counts,
    summary_with_counts,
)
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.class_scores import reference_of
from exporter.pipeline.packed import (
    COUNTS_FIELDS,
    SUMS_FIELDS,
    PackedCounts,
    PackedSums,
    counts_fields,
    counts_from_fields,
    sums_fields,
    sums_from_fields,
)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA_KEY = b"model_health.summary"
CONTENT_TYPE = "application/vnd.model-health.summary.v1+arrow"
CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
PARTS = ("feature", "prediction", "label", "loss", "performance")

SUMMARY_SCHEMA = pa.schema(
    [
        ("part", pa.string()),
        ("name", pa.string()),
        *COUNTS_FIELDS,
        ("missing", pa.int64()),
        ("minimum", pa.float64()),
        ("maximum", pa.float64()),
        *SUMS_FIELDS,
        ("payload", pa.string()),
    ]
)
SUMMARY_SCHEMA_V1 = pa.schema(
    [
        ("part", pa.string()),
        ("name", pa.string()),
        *SUMMARY_COUNT_FIELDS,
        ("payload", pa.string()),
    ]
)
_SCHEMAS = {1: SUMMARY_SCHEMA_V1, 2: SUMMARY_SCHEMA}


class SummaryFormatError(ValueError):
    """A message that is not a summary of a readable version, or not one of the profile at hand."""


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
    if header.format_version not in READABLE_VERSIONS:
        raise ValueError(f"this build writes summary formats {READABLE_VERSIONS}")
    row = _row if header.format_version == 2 else _row_v1
    rows: list[dict[str, Any]] = [row("feature", name, summary) for name, summary in bucket.features.items()]
    for part in ("prediction", "label", "loss"):
        summary = getattr(bucket, part)
        if summary is not None:
            rows.append(row(part, "", summary))
    if bucket.performance is not None:
        rows.append({"part": "performance", "name": "", "payload": json.dumps(bucket.performance.to_dict())})
    metadata = {**asdict(header), "records": bucket.records, "labels": bucket.labels}
    table = pa.Table.from_pylist(rows, schema=_SCHEMAS[header.format_version]).replace_schema_metadata(
        {METADATA_KEY: json.dumps(metadata, allow_nan=False).encode()}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _row(part: str, name: str, summary: ColumnSummary) -> dict[str, Any]:
    """A version-2 row: counts and sums packed."""
    row: dict[str, Any] = {"part": part, "name": name, "missing": summary.missing}
    row.update(counts_fields(PackedCounts.of(summary.counts)))
    if isinstance(summary, NumericSummary):
        row.update(minimum=summary.minimum, maximum=summary.maximum)
        row.update(
            sums_fields(
                PackedSums.of(
                    [summary.total, summary.total_squares, summary.lower_tail_total, summary.upper_tail_total]
                )
            )
        )
    return row


def _row_v1(part: str, name: str, summary: ColumnSummary) -> dict[str, Any]:
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
    version = data.get("format_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise SummaryFormatError(f"summary format {version!r} is not one of {READABLE_VERSIONS}")
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
    if not set(_SCHEMAS[header.format_version].names) <= set(table.column_names):
        raise SummaryFormatError("summary table lacks columns")
    summary = _summary if header.format_version == 2 else _summary_v1
    features: dict[str, ColumnSummary] = {}
    parts: dict[str, Any] = {}
    for row in _rows(table):
        part, name = row["part"], row["name"]
        if part == "feature":
            reference = reference_of(profile, name)
            if reference is None:
                raise SummaryFormatError(f"feature {name!r} is not in the profile")
            features[name] = summary(row, reference, f"feature {name!r}")
        elif part == "performance":
            try:
                parts["performance"] = performance_from_json(meta.task, row["payload"])
            except (TypeError, KeyError, ValueError) as exc:
                raise SummaryFormatError(f"performance: {exc}") from None
        elif part in ("prediction", "label", "loss"):
            reference = getattr(profile, part)
            if reference is None:
                raise SummaryFormatError(f"the profile has no {part} summary")
            parts[part] = summary(row, reference, part)
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


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, column by column: half the cost on the few-row tables a bucket is."""
    names = table.column_names
    return [dict(zip(names, values)) for values in zip(*(column.to_pylist() for column in table.columns))]


def _summary(row: dict[str, Any], reference: ColumnSummary, what: str) -> ColumnSummary:
    """A version-2 row back into a summary over ``reference``'s bins."""
    try:
        counts = counts_from_fields(row, reference.counts.size).unpacked()
        missing = row["missing"]
        if type(missing) is not int or missing < 0:
            raise ValueError("missing must be a non-negative count")
        if isinstance(reference, CategoricalSummary):
            return CategoricalSummary(reference.bins, counts, missing)
        total, squares, lower, upper = sums_from_fields(row, 4).sums()
        minimum, maximum = row["minimum"], row["maximum"]
        if not isinstance(minimum, float) or not isinstance(maximum, float) or np.isnan(minimum) or np.isnan(maximum):
            raise ValueError("minimum and maximum must be numbers")
        return NumericSummary(reference.bins, counts, missing, total, squares, minimum, maximum, lower, upper)
    except ValueError as exc:
        raise SummaryFormatError(f"{what}: {exc}") from None


def _summary_v1(row: dict[str, Any], reference: ColumnSummary, what: str) -> ColumnSummary:
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
