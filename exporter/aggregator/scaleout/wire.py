"""The messages stage 1 publishes on ``model-health-summaries`` and stage 2 merges.

Four kinds, told apart by the ``model-health-summary-kind`` header:

- ``model`` — one model's partial summary of one source range: for every configured version
  its event-time slot buckets of predictions (features and prediction summaries, records) and
  of labels (label summary, labels), each with the newest event time it holds, its serving
  counters (errors, latency histogram), and the rows the label join needs (request id,
  event time, score, class of every prediction; every label), and the model's KServe and
  Seldon request/response *halves*, not yet joined (the model's owner pairs them, see
  :mod:`exporter.aggregator.scaleout.halves`). Keyed by the model name. A
  range too big for one message goes out in parts (``model-health-range-part``), each a
  partial of its own, that add up to the range.
- ``pipeline`` — the records consumed (by format), refused (by reason) and dropped as
  duplicates in one source range of one partition, keyed by :func:`~exporter.aggregator.scaleout.routing.pipeline_key`, so those
  counters are exact across crashes too.
- ``join`` — with ``kafka.join_shards`` set, the label join's rows of one model and source
  range that fall in one join shard (:func:`~exporter.aggregator.scaleout.routing.join_shards_of`),
  split off the ``model`` message: a ``model`` body with join and label rows only, keyed by
  :func:`~exporter.aggregator.scaleout.routing.join_key` and routed by that key, so the
  shards of one hot model are joined on several summaries partitions.
- ``joined`` — what a join shard made of one ``join`` message, or of its TTL's expiry at one
  message (:mod:`exporter.aggregator.scaleout.join_shards`): performance slots folded from the
  pairs (role ``performance``) and the shard's counts (``join_report``: pairs, unmatched
  entries, predictions waiting), keyed by the shard's join key but routed to its model's
  owner. Its source is the summaries partition and the one offset it was made at.

Every message names its source in headers — topic, partition and the offset range
``[start, end)`` it accounts for — plus the time stage 1 published it and the format
version, so stage 2 can skip a range it has already merged without decoding the body.

A ``model`` body is ``MAGIC``, the body's length (u64, big-endian) and the body compressed
with zstd. The body is a sequence of length-prefixed (u32) frames: a JSON object (format,
model, slot width, per-version counters), the prediction join rows and the label rows as
Arrow IPC streams, then the slot buckets. From format 3 on they are one Arrow IPC stream, a
row per bucket as windows and checkpoints keep it (:mod:`exporter.pipeline.packed`: every
count of the bucket in one narrow vector, exact sums as bytes), which the owner merges into
its windows without unpacking; and the join and label rows carry each request's 64-bit key
(:mod:`exporter.pipeline.request_keys`) instead of its id. Formats 1 and 2 send one frame per
bucket in the sidecar's summary format (:mod:`exporter.pipeline.summary_wire`), the JSON
object listing each frame's version and role, and request ids. The halves ride in the JSON
object (``halves``: format, source topic and the half as the single-mode checkpoint writes a
waiting one, :mod:`exporter.decoders.join_state`,
raw payload and headers included); a message without the field (written before halves
travelled) has none. Bins are never sent: both ends hold the reference profile, and the
profile's creation time travels along so a partial folded against other bins is refused
instead of merged.

Stage 1 cannot use the sidecar's message as it is: a sidecar message is one bucket of one
version and is deduplicated by producer and sequence, while a partial must carry a whole
source range — every version and bucket of a model, its join rows and counters — in one
message, so that the range is merged or skipped as one.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.profile import PerformanceSummary, ReferenceProfile, performance_from_dict
from exporter.kafka import Message
from exporter.kafka.deadletter import SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER
from exporter.pipeline import summary_wire
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.packed import (
    PACKED_FIELDS,
    BucketLayout,
    PackedBucket,
    pack,
    packed_from_row,
    packed_row,
    unpack,
)
from exporter.pipeline.partial import (
    JOIN_SCHEMA,
    LABEL_JOIN_SCHEMA,
    LABEL_ROLE,
    PERFORMANCE_ROLE,
    PREDICTION_ROLE,
    CarriedHalf,
    JoinReport,
    ModelPartial,
    PipelinePartial,
    VersionPartial,
    join_rows,
    label_rows,
)
from exporter.pipeline.snapshot import HistogramState
from exporter.records import LABEL_SCHEMA, ipc_bytes

# Scale-out's wire formats, each with what it changed. A replica reads every format listed here
# and writes ``kafka.summaries_format`` (the newest by default): during a rolling upgrade the new
# build keeps writing the format the old one reads, and switches once no old replica is left.
WIRE_FORMATS: dict[int, str] = {
    1: "bucket frames in summary format 1 (every count an int64)",
    2: "bucket frames in summary format 2 (packed counts); stage-2 state snapshots",
    3: (
        "a partial's buckets in one table of packed rows (as windows and checkpoints keep them); join and "
        "label rows with 64-bit request keys instead of request ids; snapshots with keyed join buffers"
    ),
}
FORMAT_VERSION = max(WIRE_FORMATS)
# The summary format (exporter.pipeline.summary_wire) of a wire format's bucket frames (format
# 3 sends none: its buckets are packed rows).
_SUMMARY_FORMAT = {1: 1, 2: 2}
# The first format whose join rows carry request keys (before it, request ids) and whose
# buckets travel as one table of packed rows (before it, a summary message per bucket).
KEYED_FORMAT = 3
_ID_JOIN_SCHEMA = pa.schema([f for f in JOIN_SCHEMA if f.name != "request_key"])
_KEY_JOIN_SCHEMA = pa.schema([f for f in JOIN_SCHEMA if f.name != "request_id"])
_KEY_LABEL_SCHEMA = pa.schema([f for f in LABEL_JOIN_SCHEMA if f.name != "request_id"])
# Format 3's buckets: one row per bucket of the partial, packed (exporter.pipeline.packed).
_BUCKET_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("role", pa.string()),
        ("bucket_start", pa.int64()),
        ("newest", pa.float64()),  # the newest event time in the bucket (null: not known)
        *PACKED_FIELDS,
        ("performance", pa.string()),  # the performance summary as JSON, if any
    ]
)
# A join shard's reports' performance slots: format 3's bucket rows, each naming its report.
_REPORT_SCHEMA = pa.schema([("join_key", pa.string()), ("offset", pa.int64()), *_BUCKET_SCHEMA])
_LAYOUTS: dict[int, tuple[ReferenceProfile, BucketLayout]] = {}
ProfileFor = Callable[[str], "ReferenceProfile | None"]  # version → its profile (None: not configured)

MAGIC = b"MHP\x01"
KIND_HEADER = "model-health-summary-kind"
FORMAT_HEADER = "model-health-summary-format"
RANGE_START_HEADER = "model-health-range-start"
RANGE_END_HEADER = "model-health-range-end"
EMITTED_AT_HEADER = "model-health-emitted-at"
RANGE_PART_HEADER = "model-health-range-part"
MODEL_KIND = "model"
PIPELINE_KIND = "pipeline"
JOIN_KIND = "join"  # a join shard's rows: stage 1 → the shard's partition
JOINED_KIND = "joined"  # a join shard's report: the shard's partition → the model's owner
KINDS = (MODEL_KIND, PIPELINE_KIND, JOIN_KIND, JOINED_KIND)
# A stage-2 owner's merged state, published into its own summaries partition (see stage2).
SNAPSHOT_KIND = "snapshot"
SNAPSHOT_KEY = b"\x00snapshot"
SNAPSHOT_COVERS_HEADER = "model-health-snapshot-covers"
SNAPSHOT_ID_HEADER = "model-health-snapshot-id"
SNAPSHOT_PART_HEADER = "model-health-snapshot-part"
SNAPSHOT_PARTS_HEADER = "model-health-snapshot-parts"
MAX_SNAPSHOT_CHUNK_BYTES = 512 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
# What one message may hold, so it stays well under Kafka's default 1 MB message size: a
# summary costs up to ~700 bytes compressed (100 features, full fine histograms), a join or
# label row a few tens.
MAX_SUMMARIES_PER_MESSAGE = 500
MAX_ROWS_PER_MESSAGE = 10_000
MAX_REPORTS_PER_MESSAGE = 1_000  # join shards' reports in one ``joined`` message
# Halves carry their raw payload: at most this much of their JSON text per message (a
# single bigger half goes alone).
MAX_HALF_BYTES_PER_MESSAGE = 256 * 1024
_ZSTD = pa.Codec("zstd")
_LENGTH = struct.Struct(">I")
_SIZE = struct.Struct(">Q")


class WireError(ValueError):
    """A summaries message that cannot be merged; ``reason`` is the rejected-total label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def readable_format(text: object) -> int:
    """The wire format a message names, if this build reads it; else :class:`WireError`."""
    try:
        version = int(str(text))
    except ValueError:
        version = -1
    if version not in WIRE_FORMATS:
        raise WireError(
            "invalid_summary", f"summary format {text!r} is not one this build reads ({sorted(WIRE_FORMATS)})"
        )
    return version


@dataclass(frozen=True)
class SummaryRange:
    """What the headers say: which key, and which source offsets the message accounts for."""

    kind: str
    key: str
    source_topic: str
    source_partition: int
    start: int
    end: int
    emitted_at: float
    part: int = 0  # a range too big for one message goes out in parts 0, 1, …
    format: int = FORMAT_VERSION  # the wire format of the body (WIRE_FORMATS)

    @property
    def source(self) -> tuple[str, int]:
        return (self.source_topic, self.source_partition)

    def headers(self) -> tuple[tuple[str, bytes], ...]:
        return (
            (KIND_HEADER, self.kind.encode()),
            (FORMAT_HEADER, str(self.format).encode()),
            (SOURCE_TOPIC_HEADER, self.source_topic.encode()),
            (SOURCE_PARTITION_HEADER, str(self.source_partition).encode()),
            (RANGE_START_HEADER, str(self.start).encode()),
            (RANGE_END_HEADER, str(self.end).encode()),
            (EMITTED_AT_HEADER, repr(float(self.emitted_at)).encode()),
            (RANGE_PART_HEADER, str(self.part).encode()),
        )

    @classmethod
    def of(cls, message: Message) -> SummaryRange | None:
        """The range of a stage-1 message; None for other producers' messages (no kind header)."""
        headers = dict(message.headers)
        kind = headers.get(KIND_HEADER)
        if kind is None:
            return None
        try:
            version = readable_format(headers.get(FORMAT_HEADER, b"").decode())
            if kind.decode() not in KINDS:
                raise WireError("invalid_summary", f"unknown summary kind {kind!r}")
            summary = cls(
                kind=kind.decode(),
                key=(message.key or b"").decode(),
                source_topic=headers[SOURCE_TOPIC_HEADER].decode(),
                source_partition=int(headers[SOURCE_PARTITION_HEADER]),
                start=int(headers[RANGE_START_HEADER]),
                end=int(headers[RANGE_END_HEADER]),
                emitted_at=float(headers[EMITTED_AT_HEADER]),
                part=int(headers.get(RANGE_PART_HEADER, b"0")),
                format=version,
            )
        except (KeyError, ValueError, UnicodeDecodeError) as error:
            if isinstance(error, WireError):
                raise
            raise WireError("invalid_summary", f"bad summary headers: {error!r}") from None
        if not summary.key or summary.end <= summary.start or summary.part < 0 or not math.isfinite(summary.emitted_at):
            raise WireError("invalid_summary", f"bad summary range or key: {summary}")
        return summary


@dataclass(frozen=True)
class SnapshotPart:
    """One chunk of a stage-2 state snapshot: the state merged from its partition up to ``covers``."""

    snapshot_id: str
    covers: int  # every message of the partition before this offset is in the state
    part: int
    parts: int
    data: bytes

    @classmethod
    def of(cls, message: Message) -> SnapshotPart | None:
        """The chunk a message carries; None for any other message."""
        headers = dict(message.headers)
        if headers.get(KIND_HEADER) != SNAPSHOT_KIND.encode():
            return None
        try:
            part = cls(
                snapshot_id=headers[SNAPSHOT_ID_HEADER].decode(),
                covers=int(headers[SNAPSHOT_COVERS_HEADER]),
                part=int(headers[SNAPSHOT_PART_HEADER]),
                parts=int(headers[SNAPSHOT_PARTS_HEADER]),
                data=bytes(message.value or b""),
            )
        except (KeyError, ValueError, UnicodeDecodeError) as error:
            raise WireError("invalid_summary", f"bad snapshot headers: {error!r}") from None
        if not 0 <= part.part < part.parts or part.covers < 0:
            raise WireError("invalid_summary", f"bad snapshot part {part.part} of {part.parts}")
        return part

    @staticmethod
    def messages(
        snapshot_id: str, covers: int, data: bytes, max_bytes: int = MAX_SNAPSHOT_CHUNK_BYTES
    ) -> list[tuple[tuple[tuple[str, bytes], ...], bytes]]:
        """``data`` as (headers, value) chunks small enough for one Kafka message each."""
        chunks = [data[i : i + max_bytes] for i in range(0, len(data), max_bytes)] or [b""]
        return [
            (
                (
                    (KIND_HEADER, SNAPSHOT_KIND.encode()),
                    (FORMAT_HEADER, str(FORMAT_VERSION).encode()),
                    (SNAPSHOT_ID_HEADER, snapshot_id.encode()),
                    (SNAPSHOT_COVERS_HEADER, str(covers).encode()),
                    (SNAPSHOT_PART_HEADER, str(number).encode()),
                    (SNAPSHOT_PARTS_HEADER, str(len(chunks)).encode()),
                ),
                chunk,
            )
            for number, chunk in enumerate(chunks)
        ]


# ---------------------------------------------------------------------------------------------
# Model partials.


def _frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


def slot_rings(part: VersionPartial) -> dict[str, dict[int, Bucket | PackedBucket]]:
    """A version's slot buckets by role (performance only on a join shard's report)."""
    return {PREDICTION_ROLE: part.predictions, LABEL_ROLE: part.labels, PERFORMANCE_ROLE: part.performance}


def split_model_partial(
    partial: ModelPartial,
    max_summaries: int = MAX_SUMMARIES_PER_MESSAGE,
    max_rows: int = MAX_ROWS_PER_MESSAGE,
    max_half_bytes: int | None = None,
) -> list[ModelPartial]:
    """``partial`` as parts small enough for one message each, which add up to it.

    Deterministic — the same partial always splits the same way — so a range published
    again after a crash is the same sequence of parts, and stage 2 can skip by (end, part).
    The first part carries the per-version counters; buckets, rows and then halves (a half
    counts as a row, and their text is bounded by ``max_half_bytes``) fill parts in order.
    """
    if max_half_bytes is None:
        max_half_bytes = MAX_HALF_BYTES_PER_MESSAGE
    pieces: list[tuple[int, str, str, int]] = []  # (summaries, version, role, start)
    for version, part in sorted(partial.versions.items()):
        for role, ring in slot_rings(part).items():
            for start, bucket in sorted(ring.items()):
                summaries = 1 + (
                    bin(bucket.present).count("1")
                    if isinstance(bucket, PackedBucket)
                    else len(bucket.features)
                    + sum(getattr(bucket, p) is not None for p in ("prediction", "label", "loss"))
                )
                pieces.append((summaries, version, role, start))
    joins = [(v, p.join) for v, p in sorted(partial.versions.items()) if p.join is not None and p.join.num_rows]
    rows = sum(t.num_rows for _, t in joins) + (partial.labels.num_rows if partial.labels is not None else 0)
    half_bytes = sum(len(h.document) for h in partial.halves)
    if (
        sum(n for n, *_ in pieces) <= max_summaries
        and rows + len(partial.halves) <= max_rows
        and half_bytes <= max_half_bytes
    ):
        return [partial]

    def empty(first: bool) -> ModelPartial:
        out = ModelPartial(partial.model, partial.slot_seconds)
        for version, part in partial.versions.items():
            out.versions[version] = (
                VersionPartial(part.profile_created_at)
                if not first
                else VersionPartial(part.profile_created_at, errors=part.errors, latency=part.latency)
            )
        return out

    parts = [empty(first=True)]
    held = 0
    for summaries, version, role, start in pieces:
        if held and held + summaries > max_summaries:
            parts.append(empty(first=False))
            held = 0
        source = partial.versions[version]
        target = parts[-1].versions[version]
        slot_rings(target)[role][start] = slot_rings(source)[role][start]
        if (role, start) in source.newest:
            target.newest[(role, start)] = source.newest[(role, start)]
        held += summaries
    # Rows after the buckets, in chunks: join rows version by version, then labels.
    index = len(parts) - 1
    room = max_rows
    chunks: list[tuple[str | None, pa.Table]] = [(v, t) for v, t in joins]
    if partial.labels is not None and partial.labels.num_rows:
        chunks.append((None, partial.labels))
    for join_version, table in chunks:
        offset = 0
        while offset < table.num_rows:
            if room == 0:
                parts.append(empty(first=False))
                index, room = len(parts) - 1, max_rows
            take = table.slice(offset, min(room, table.num_rows - offset))
            if join_version is None:
                current = parts[index].labels
                parts[index].labels = take if current is None else pa.concat_tables([current, take])
            else:
                target = parts[index].versions[join_version]
                target.join = take if target.join is None else pa.concat_tables([target.join, take])
            offset += take.num_rows
            room -= take.num_rows
    # Halves last, in order: rows and bytes both bounded.
    bytes_room = max_half_bytes
    for half in partial.halves:
        size = len(half.document)
        if room == 0 or (size > bytes_room and bytes_room < max_half_bytes):
            parts.append(empty(first=False))
            room, bytes_room = max_rows, max_half_bytes
        parts[-1].halves.append(half)
        room -= 1
        bytes_room -= size
    return parts


def encode_model_partial(
    partial: ModelPartial,
    producer: str = "",
    sequence: int = 0,
    format_version: int = FORMAT_VERSION,
    profile_for: ProfileFor | None = None,
) -> bytes:
    """``producer`` and ``sequence`` fill the embedded bucket headers of formats 1 and 2 (stage 1
    passes the source partition and the range end); stage 2 deduplicates by range, not by them.
    ``format_version`` is the wire format to write (:data:`WIRE_FORMATS`); from format 3 on the
    buckets are packed over their profile's layout, which ``profile_for`` gives."""
    versions: dict[str, Any] = {}
    buckets: list[tuple[str, str, float | None]] = []
    frames: list[bytes] = []
    joins: list[pa.Table] = []
    packed_rows: list[dict[str, object]] = []
    for version, part in partial.versions.items():
        for role, ring in slot_rings(part).items():
            for start, bucket in sorted(ring.items()):
                if format_version >= KEYED_FORMAT:
                    packed_rows.append(_packed_row(version, role, start, part, bucket, profile_for))
                    continue
                header = summary_wire.SummaryHeader(
                    model=partial.model,
                    model_version=version,
                    bucket_start=start,
                    bucket_seconds=partial.slot_seconds,
                    producer_id=producer,
                    sequence=sequence,
                    records=bucket.records,
                    labels=bucket.labels,
                    profile_created_at=part.profile_created_at,
                    format_version=_SUMMARY_FORMAT[format_version],
                )
                if isinstance(bucket, PackedBucket):
                    bucket = unpack(bucket, bucket_layout(_profile(version, part, profile_for)))
                frames.append(summary_wire.encode_summary(header, bucket))
                buckets.append((version, role, part.newest.get((role, start))))
        versions[version] = {
            "profile_created_at": part.profile_created_at,
            "errors": part.errors,
            "latency": None if part.latency is None else _latency(part.latency),
        }
        if part.join is not None and part.join.num_rows:
            schema = _wire_schemas(format_version)[0]
            joins.append(part.join.select(schema.names).cast(schema))
    metadata: dict[str, Any] = {
        "format": format_version,
        "model": partial.model,
        "slot_seconds": partial.slot_seconds,
        "versions": versions,
        "buckets": buckets,
    }
    if format_version >= KEYED_FORMAT:
        frames = [ipc_bytes(pa.Table.from_pylist(packed_rows, schema=_BUCKET_SCHEMA))]
    if partial.halves:
        metadata["halves"] = [[h.format, h.topic, h.document] for h in partial.halves]
    join_schema, label_schema = _wire_schemas(format_version)
    join = pa.concat_tables(joins) if joins else join_schema.empty_table()
    labels = (
        partial.labels.select(label_schema.names).cast(label_schema)
        if partial.labels is not None
        else label_schema.empty_table()
    )
    body = b"".join(_frame(f) for f in [json.dumps(metadata).encode(), ipc_bytes(join), ipc_bytes(labels), *frames])
    return MAGIC + _SIZE.pack(len(body)) + _ZSTD.compress(body, asbytes=True)


def bucket_layout(profile: ReferenceProfile) -> BucketLayout:
    """The profile's bucket layout, built once per profile object."""
    known = _LAYOUTS.get(id(profile))
    if known is None or known[0] is not profile:
        known = _LAYOUTS[id(profile)] = (profile, BucketLayout.of(profile))
    return known[1]


def _profile(version: str, part: VersionPartial, profile_for: ProfileFor | None) -> ReferenceProfile:
    profile = profile_for(version) if profile_for is not None else None
    if profile is None or profile.metadata.created_at != part.profile_created_at:
        raise ValueError(f"packing v{version}'s buckets needs the profile they were folded over")
    return profile


def _packed_row(
    version: str,
    role: str,
    start: int,
    part: VersionPartial,
    bucket: Bucket | PackedBucket,
    profile_for: ProfileFor | None,
    compact: bool = False,
) -> dict[str, object]:
    if not isinstance(bucket, PackedBucket):
        bucket = pack(bucket, bucket_layout(_profile(version, part, profile_for)))
    performance = bucket.performance
    return {
        "model_version": version,
        "role": role,
        "bucket_start": start,
        "newest": part.newest.get((role, start)),
        **packed_row(bucket),
        "performance": None if performance is None else _performance_text(performance, compact),
    }


# A classification summary's count vectors: JSON lists in a partial (as every format-3 reader
# reads them); in a join shard's report (its readers are of a build that reads every form) base64
# of little-endian int64, or, when most counts are 0 (a slot's few pairs over 1,000 score bins),
# {"size", "at": uint32 positions, "count": int64 counts} of the others, each base64.
_COUNT_VECTORS = ("confusion", "positive_scores", "negative_scores")


def _performance_text(summary: PerformanceSummary, compact: bool = False) -> str:
    document = summary.to_dict()
    if compact:
        for name in _COUNT_VECTORS:
            if name in document:
                vector = np.asarray(getattr(summary, name), dtype="<i8").reshape(-1)  # not the list
                at = np.flatnonzero(vector)
                document[name] = (
                    {"size": int(vector.size), "at": _b64(at.astype("<u4")), "count": _b64(vector[at])}
                    if 12 * at.size < 8 * vector.size
                    else _b64(vector)
                )
    return json.dumps(document)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _expanded(document: dict[str, Any]) -> dict[str, Any]:
    for name in _COUNT_VECTORS:
        stored = document.get(name)
        if isinstance(stored, str):
            document[name] = np.frombuffer(base64.b64decode(stored, validate=True), dtype="<i8")
        elif isinstance(stored, dict):
            vector = np.zeros(int(stored["size"]), dtype=np.int64)
            at = np.frombuffer(base64.b64decode(stored["at"], validate=True), dtype="<u4")
            vector[at] = np.frombuffer(base64.b64decode(stored["count"], validate=True), dtype="<i8")
            document[name] = vector
    return document


def _wire_schemas(format_version: int) -> tuple[pa.Schema, pa.Schema]:
    """The join rows' and the label rows' schemas in a wire format."""
    if format_version >= KEYED_FORMAT:
        return _KEY_JOIN_SCHEMA, _KEY_LABEL_SCHEMA
    return _ID_JOIN_SCHEMA, LABEL_SCHEMA


def _frames(value: bytes, minimum: int = 3) -> list[bytes]:
    if not value.startswith(MAGIC) or len(value) < len(MAGIC) + _SIZE.size:
        raise WireError("invalid_summary", "not a model-health partial summary (bad magic)")
    (size,) = _SIZE.unpack_from(value, len(MAGIC))
    if size > MAX_BODY_BYTES:
        raise WireError("invalid_summary", f"partial summary claims {size} bytes")
    try:
        body = _ZSTD.decompress(value[len(MAGIC) + _SIZE.size :], decompressed_size=size, asbytes=True)
    except (pa.ArrowException, OSError) as error:
        raise WireError("invalid_summary", f"partial summary does not decompress: {error}") from None
    frames, at = [], 0
    while at < len(body):
        if at + _LENGTH.size > len(body):
            raise WireError("invalid_summary", "partial summary is truncated")
        (length,) = _LENGTH.unpack_from(body, at)
        at += _LENGTH.size
        if at + length > len(body):
            raise WireError("invalid_summary", "partial summary is truncated")
        frames.append(body[at : at + length])
        at += length
    if len(frames) < minimum:
        raise WireError("invalid_summary", "partial summary is truncated")
    return frames


def _empty_tables() -> dict[bytes, pa.Table]:
    """The bytes this build writes for an empty join or label table, and the table they read as."""
    schemas = [schema for version in WIRE_FORMATS for schema in _wire_schemas(version)]
    return {ipc_bytes(schema.empty_table()): schema.empty_table() for schema in schemas}


def _table(frame: bytes) -> pa.Table:
    # Most owners' partials carry no join rows (join shards take them), most shards' none of the
    # other side: an empty table's frame is recognised by its bytes, not read (~50 µs each).
    empty = _EMPTY_TABLES.get(frame)
    if empty is not None:
        return empty
    try:
        table = pa.ipc.open_stream(pa.py_buffer(frame)).read_all()
        table.validate(full=True)  # damaged buffers are refused here, not read out of bounds later
        return table
    except (pa.ArrowException, OSError, ValueError) as error:
        raise WireError("invalid_summary", f"unreadable partial summary table: {error}") from None


_EMPTY_TABLES = _empty_tables()


def decode_model_partial(value: bytes, profile_for: ProfileFor) -> ModelPartial:
    """Rebuild a model partial over the bins of the receiving side's profiles.

    Raises :class:`WireError` (reason ``invalid_summary``, ``unknown_model`` or
    ``profile_mismatch``) when it cannot be merged as it is.
    """
    frames = _frames(value)
    try:
        metadata = json.loads(frames[0])
        format_version = readable_format(metadata.get("format"))
        partial = ModelPartial(str(metadata["model"]), int(metadata["slot_seconds"]))
        for format, topic, document in metadata.get("halves", []):
            if format not in ("kserve", "seldon") or not isinstance(topic, str) or not isinstance(document, str):
                raise WireError("invalid_summary", f"a half of format {format!r}")
            partial.halves.append(CarriedHalf(format, topic, document))
        profiles: dict[str, ReferenceProfile] = {}
        for version, info in metadata["versions"].items():
            profile = profile_for(version)
            if profile is None:
                raise WireError("unknown_model", f"model {partial.model!r} version {version!r} is not configured here")
            if info["profile_created_at"] != profile.metadata.created_at:
                raise WireError(
                    "profile_mismatch",
                    f"{partial.model} v{version} was folded against the profile created at {info['profile_created_at']}, "
                    f"this replica has {profile.metadata.created_at}",
                )
            profiles[version] = profile
            latency = info.get("latency")
            partial.versions[version] = VersionPartial(
                profile_created_at=float(info["profile_created_at"]),
                errors=int(info["errors"]),
                latency=None
                if latency is None
                else HistogramState(tuple(latency[0]), tuple(int(c) for c in latency[1]), float(latency[2])),
            )
        if format_version >= KEYED_FORMAT:
            if len(frames) != 4:
                raise WireError("invalid_summary", f"{len(frames)} frames in a format-{format_version} partial")
            _read_packed_buckets(partial, _table(frames[3]), profiles)
            roles = []  # the table named each bucket's version and role
        else:
            roles = metadata["buckets"]
            if len(roles) != len(frames) - 3:
                raise WireError("invalid_summary", f"{len(roles)} buckets listed, {len(frames) - 3} sent")
        for (version, role, newest), frame in zip(roles, frames[3:]):
            if version not in partial.versions or role not in (PREDICTION_ROLE, LABEL_ROLE):
                raise WireError("invalid_summary", f"bucket of version {version!r}, role {role!r}")
            try:
                header, bucket = summary_wire.decode_summary(frame, profiles[version])
            except summary_wire.SummaryFormatError as error:
                reason = "profile_mismatch" if "profile" in str(error) else "invalid_summary"
                raise WireError(reason, f"{partial.model} v{version}: {error}") from None
            if header.bucket_seconds != partial.slot_seconds:
                raise WireError(
                    "invalid_summary",
                    f"a {header.bucket_seconds}s bucket in a partial of {partial.slot_seconds}s slots",
                )
            target = (
                partial.versions[version].predictions if role == PREDICTION_ROLE else partial.versions[version].labels
            )
            target[header.bucket_start] = bucket
            if newest is not None:
                partial.versions[version].newest[(role, header.bucket_start)] = float(newest)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, pa.ArrowException) as error:
        raise WireError("invalid_summary", f"malformed partial summary: {error!r}") from None
    join, labels = _table(frames[1]), _table(frames[2])
    if (join.schema, labels.schema) != _wire_schemas(format_version):
        raise WireError("invalid_summary", "partial summary join rows have another schema")
    join, labels = _keyed(partial.model, join, labels)
    if join.num_rows:
        for version, part in partial.versions.items():
            rows = join if len(partial.versions) == 1 else join.filter(pc.equal(join.column("model_version"), version))
            part.join = rows if rows.num_rows else None
    partial.labels = labels if labels.num_rows else None
    return partial


def _read_packed_buckets(partial: ModelPartial, table: pa.Table, profiles: dict[str, ReferenceProfile]) -> None:
    """Format 3's bucket table into the partial's versions, checked against their layouts."""
    if table.schema != _BUCKET_SCHEMA:
        raise WireError("invalid_summary", "partial summary buckets have another schema")
    for row in _rows(table):
        _read_packed_row(partial, row, profiles)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    names = table.column_names
    return [dict(zip(names, values)) for values in zip(*(column.to_pylist() for column in table.columns))]


def _read_packed_row(partial: ModelPartial, row: dict[str, Any], profiles: Mapping[str, ReferenceProfile]) -> None:
    version, role, start, newest = row["model_version"], row["role"], row["bucket_start"], row["newest"]
    if version not in partial.versions or role not in (PREDICTION_ROLE, LABEL_ROLE, PERFORMANCE_ROLE):
        raise WireError("invalid_summary", f"bucket of version {version!r}, role {role!r}")
    if start is None or start % partial.slot_seconds:
        raise WireError("invalid_summary", f"bucket start {start!r} is not a {partial.slot_seconds}s slot")
    profile = profiles[version]
    performance = None
    if row["performance"] is not None:
        try:
            performance = performance_from_dict(profile.metadata.task, _expanded(json.loads(row["performance"])))
        except (TypeError, KeyError, ValueError, binascii.Error) as error:
            raise WireError("invalid_summary", f"{partial.model} v{version} performance: {error}") from None
    layout = bucket_layout(profile)
    try:
        bucket = packed_from_row(row, layout, performance)  # merged as it is, never unpacked
    except ValueError as error:
        raise WireError("invalid_summary", f"{partial.model} v{version} bucket {start}: {error}") from None
    part = partial.versions[version]
    slot_rings(part)[role][start] = bucket
    if newest is not None:
        part.newest[(role, start)] = float(newest)


# ---------------------------------------------------------------------------------------------
# Join shards' reports.


@dataclass(frozen=True)
class ShardReport:
    """What one join shard made at one offset of its summaries partition, for a model's owner:
    its label join's performance slots and counts (``partial.join_reports``, one), or the
    records its KServe/Seldon pairing made (a model partial, keyed ``paired:<model>``)."""

    key: str  # what the owner deduplicates it under (with the shard's partition)
    offset: int  # the offset of the shard's partition whose merge made it
    emitted_at: float  # that partition's watermark then: the owner's join clock moves with it
    partial: ModelPartial


def encode_reports(reports: list[ShardReport], profile_for: Callable[[str, str], ReferenceProfile | None]) -> bytes:
    """Reports of one partition's join shards (any models, any offsets) as one ``joined`` body:
    a JSON list of the reports (key, offset, watermark, model, slot width, counts, and per version
    its profile's creation time, errors and latency), then one table of their slot buckets as
    packed rows, each naming its report by key and offset."""
    entries = []
    rows: list[dict[str, object]] = []
    for report in reports:
        partial = report.partial
        if partial.labels is not None or partial.halves or any(p.join is not None for p in partial.versions.values()):
            raise ValueError("a report carries slots and counts, not rows or halves")
        counts = [[c.shard, c.joined, c.unmatched, c.pending] for c in partial.join_reports]
        versions = {
            version: [part.profile_created_at, part.errors, None if part.latency is None else _latency(part.latency)]
            for version, part in partial.versions.items()
        }
        entries.append(
            [report.key, report.offset, report.emitted_at, partial.model, partial.slot_seconds, counts, versions]
        )
        for version, part in partial.versions.items():
            for role, ring in slot_rings(part).items():
                for start, bucket in sorted(ring.items()):
                    row = _packed_row(
                        version,
                        role,
                        start,
                        part,
                        bucket,
                        lambda v, model=partial.model: profile_for(model, v),  # type: ignore[misc]
                        compact=True,
                    )
                    rows.append({"join_key": report.key, "offset": report.offset, **row})
    metadata = json.dumps({"format": KEYED_FORMAT, "reports": entries}).encode()
    body = _frame(metadata) + _frame(ipc_bytes(pa.Table.from_pylist(rows, schema=_REPORT_SCHEMA)))
    return MAGIC + _SIZE.pack(len(body)) + _ZSTD.compress(body, asbytes=True)


def _latency(histogram: HistogramState) -> list[object]:
    return [list(histogram.bounds), list(histogram.counts), histogram.total]


def decode_reports(value: bytes, profile_for: Callable[[str, str], ReferenceProfile | None]) -> list[ShardReport]:
    """The reports of a ``joined`` body, in the order they were made (:func:`encode_reports`).

    Raises :class:`WireError` (``invalid_summary``, ``unknown_model``, ``profile_mismatch``)."""
    frames = _frames(value, minimum=2)
    try:
        metadata = json.loads(frames[0])
        readable_format(metadata.get("format"))
        reports: dict[tuple[str, int], ShardReport] = {}
        profiles: dict[tuple[str, int], dict[str, ReferenceProfile]] = {}
        for key, offset, emitted_at, model, slot, counts, versions in metadata["reports"]:
            partial = ModelPartial(
                _text(model), int(slot), join_reports=[JoinReport(*(_count(n) for n in c)) for c in counts]
            )
            known: dict[str, ReferenceProfile] = {}
            for version, (created_at, errors, latency) in versions.items():
                profile = profile_for(partial.model, version)
                if profile is None:
                    raise WireError("unknown_model", f"model {model!r} version {version!r} is not configured here")
                if created_at != profile.metadata.created_at:
                    raise WireError(
                        "profile_mismatch", f"{model} v{version}: a join shard folded against another profile"
                    )
                known[version] = profile
                partial.versions[version] = VersionPartial(
                    float(created_at),
                    errors=_count(errors),
                    latency=None
                    if latency is None
                    else HistogramState(tuple(latency[0]), tuple(_count(c) for c in latency[1]), float(latency[2])),
                )
            at = (_text(key), _count(offset))
            reports[at] = ShardReport(at[0], at[1], float(emitted_at), partial)
            profiles[at] = known
        table = _table(frames[1])
        if table.schema != _REPORT_SCHEMA:
            raise WireError("invalid_summary", "join shard reports have another schema")
        for row in _rows(table):
            at = (row["join_key"], row["offset"])
            if at not in reports:
                raise WireError("invalid_summary", f"a bucket row of no report: {at!r}")
            _read_packed_row(reports[at].partial, row, profiles[at])
    except WireError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, pa.ArrowException) as error:
        raise WireError("invalid_summary", f"malformed join shard reports: {error!r}") from None
    return list(reports.values())


def _keyed(model: str, join: pa.Table, labels: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Join and label rows as the join takes them: a format that sends keys leaves the ids
    out (null here); one that sends ids gets them keyed here."""
    if "request_key" in join.schema.names:
        join = join.add_column(1, JOIN_SCHEMA.field("request_id"), pa.nulls(join.num_rows, pa.string()))
    else:
        join = join_rows(model, join)
    if "request_key" in labels.schema.names:
        labels = labels.add_column(1, LABEL_JOIN_SCHEMA.field("request_id"), pa.nulls(labels.num_rows, pa.string()))
    else:
        labels = label_rows(model, labels)
    return join, labels


# ---------------------------------------------------------------------------------------------
# Pipeline partials.


def encode_pipeline_partial(partial: PipelinePartial, format_version: int = FORMAT_VERSION) -> bytes:
    return json.dumps(
        {
            "format": format_version,
            "consumed": [[*key, count] for key, count in sorted(partial.consumed.items())],
            "rejected": [[*key, count] for key, count in sorted(partial.rejected.items())],
            # Added with the duplicate counter; a message without it (older) dropped none.
            "duplicates": [[topic, count] for topic, count in sorted(partial.duplicates.items())],
        }
    ).encode()


def _count(value: object) -> int:
    # A count added into a counter must be a whole, non-negative number: not 1.5, inf or true.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"count {value!r} is not a non-negative integer")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def decode_pipeline_partial(value: bytes) -> PipelinePartial:
    try:
        document = json.loads(value)
        readable_format(document.get("format"))
        return PipelinePartial(
            consumed={(_text(t), _text(f)): _count(n) for t, f, n in document["consumed"]},
            rejected={(_text(t), _text(r)): _count(n) for t, r, n in document["rejected"]},
            duplicates={_text(t): _count(n) for t, n in document.get("duplicates", [])},
        )
    except WireError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        raise WireError("invalid_summary", f"malformed pipeline summary: {error!r}") from None
