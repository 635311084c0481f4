"""Atomic checkpoints of the aggregator's state together with the offsets it covers.

The summaries in every bucket and the input offsets they account for are written in
one Parquet file, replaced atomically (temporary file, fsync, rename, fsync of the
folder). After a crash at any moment the last complete checkpoint is read back and
consumption resumes from *its* offsets, so every record is counted exactly once.
Bins are not stored: they come from the model's reference profile, whose creation time
the checkpoint records so that state folded against another profile is never mixed in.
State that may grow large — the request/response halves waiting in the decoders' join
buffers — travels as rows of JSON documents (``part`` = ``document``), not in the file's
key-value metadata, whose strings Parquet readers cap (100 MB by default in pyarrow).

Format 2 (written since the windows keep their buckets packed, :mod:`exporter.pipeline.packed`)
stores each bucket as it is kept: one row of binary columns (:data:`~exporter.pipeline.packed.PACKED_FIELDS`:
narrow counts, nonzero bins only at low traffic, exact sums as bytes), with the layout of each
model's summaries in the metadata so that a checkpoint of other bins is never read into them.
Format 1 (one row per summary, counts as int64 lists, sums as text) is still read.
Format 3 stores what format 2 does; only the label join's buffers in the extras changed: they
hold each waiting request's 64-bit key (:mod:`exporter.pipeline.request_keys`) where format 2
held its id, which is keyed when read.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detectors.profile import ReferenceProfile, performance_from_json, summary_with_counts
from detectors.summary import ColumnSummary
from exporter.pipeline.class_scores import reference_of
from exporter.pipeline.packed import PACKED_FIELDS, packed_from_row, packed_row
from exporter.pipeline.windows import Bucket, ModelWindows

# A build before format 3 refuses a format-3 checkpoint instead of reading keys as ids.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
METADATA_KEY = b"model_health.checkpoint"
log = logging.getLogger(__name__)

# Format 2: one row per packed bucket, or per document.
_PACKED_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("window", pa.string()),
        ("bucket_start", pa.int64()),
        ("part", pa.string()),  # bucket | document
        ("name", pa.string()),
        *PACKED_FIELDS,
        ("payload", pa.string()),  # the performance summary (JSON), or the document
    ]
)

ModelKey = tuple[str, str]
Offsets = dict[tuple[str, int], int]


@dataclass
class Checkpoint:
    offsets: Offsets = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # joiner buffers, counters
    # Named lists of JSON texts, order kept (decoder join buffers): see the module docstring.
    documents: dict[str, list[str]] = field(default_factory=dict)


def encode_checkpoint(stores: dict[ModelKey, ModelWindows], checkpoint: Checkpoint) -> bytes:
    """State and offsets as the bytes of one Parquet file (what :func:`save_checkpoint` writes,
    and what scale-out publishes as a shared snapshot)."""
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for key, store in stores.items():
        for window, ring in store.buckets.items():
            for start, packed in ring.packed_items():
                performance = None if packed.performance is None else json.dumps(packed.performance.to_dict())
                rows.append(
                    {
                        "model": key[0],
                        "model_version": key[1],
                        "window": window,
                        "bucket_start": start,
                        "part": "bucket",
                        "name": "",
                        **packed_row(packed),
                        "payload": performance,
                    }
                )
        models[f"{key[0]}\x1f{key[1]}"] = {
            "profile_created_at": store.profile.metadata.created_at,
            "layout": store.layout.signature(),
            "newest_event": store.newest_event if np.isfinite(store.newest_event) else None,
            "last_prediction_at": store.last_prediction_at,
            "last_label_at": store.last_label_at,
        }
    for group, texts in checkpoint.documents.items():
        rows.extend({"part": "document", "name": group, "payload": text} for text in texts)
    metadata = {
        "format_version": FORMAT_VERSION,
        "offsets": [[topic, partition, offset] for (topic, partition), offset in sorted(checkpoint.offsets.items())],
        "models": models,
        "extra": checkpoint.extra,
    }
    table = pa.Table.from_pylist(rows, schema=_PACKED_SCHEMA).replace_schema_metadata(
        {METADATA_KEY: json.dumps(metadata).encode()}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def save_checkpoint(path: str | Path, stores: dict[ModelKey, ModelWindows], checkpoint: Checkpoint) -> None:
    save_bytes(path, encode_checkpoint(stores, checkpoint))


def save_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: temporary file, fsync, rename, fsync of the folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def load_checkpoint(path: str | Path, stores: dict[ModelKey, ModelWindows]) -> Checkpoint | None:
    """Restore buckets into ``stores``; return the offsets and extras, or None if absent.

    A model whose profile changed since the checkpoint starts empty (logged), since its
    buckets were folded against other bins.
    """
    source = Path(path)
    if not source.exists():
        return None
    return decode_checkpoint(source.read_bytes(), stores, str(source))


def decode_checkpoint(data: bytes, stores: dict[ModelKey, ModelWindows], source: str = "checkpoint") -> Checkpoint:
    """Restore buckets from :func:`encode_checkpoint`'s bytes into ``stores``; the offsets and extras."""
    table = pq.read_table(pa.BufferReader(data))
    metadata = json.loads((table.schema.metadata or {})[METADATA_KEY])
    version = metadata.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{source}: checkpoint format {version} is not one of {READABLE_VERSIONS}")
    usable: set[ModelKey] = set()
    for joined_key, info in metadata["models"].items():
        model, model_version = joined_key.split("\x1f")
        store = stores.get((model, model_version))
        if store is None:
            log.warning(
                "checkpoint holds state for %s v%s, which is no longer configured; dropped", model, model_version
            )
            continue
        if (
            info["profile_created_at"] != store.profile.metadata.created_at
            or info.get("layout", store.layout.signature()) != store.layout.signature()
        ):
            log.warning("profile of %s v%s changed since the checkpoint; its windows start empty", model, model_version)
            continue
        usable.add((model, model_version))
        store.newest_event = info["newest_event"] if info["newest_event"] is not None else -np.inf
        store.last_prediction_at = info["last_prediction_at"]
        store.last_label_at = info["last_label_at"]
        for ring in store.buckets.values():
            ring.clear()
    documents: dict[str, list[str]] = {}
    if version >= 2:
        _load_packed_rows(source, table, stores, usable, documents)
    else:
        _load_summary_rows(table, stores, usable, documents)
    offsets = {(topic, int(partition)): int(offset) for topic, partition, offset in metadata["offsets"]}
    return Checkpoint(offsets, metadata.get("extra", {}), documents)


def _load_packed_rows(
    source: str,
    table: pa.Table,
    stores: dict[ModelKey, ModelWindows],
    usable: set[ModelKey],
    documents: dict[str, list[str]],
) -> None:
    """Format 2: each bucket row back into its ring as it was packed."""
    for row in table.to_pylist():
        if row["part"] == "document":
            documents.setdefault(row["name"], []).append(row["payload"])
            continue
        key = (row["model"], row["model_version"])
        if key not in usable:
            continue
        store = stores[key]
        performance = None
        if row["payload"] is not None:
            performance = performance_from_json(store.profile.metadata.task, row["payload"])
        try:
            packed = packed_from_row(row, store.layout, performance)
        except ValueError as exc:
            raise ValueError(
                f"{source}: bucket {row['window']}@{row['bucket_start']} of {key[0]} v{key[1]}: {exc}"
            ) from None
        store.buckets[row["window"]].packed[row["bucket_start"]] = packed


def _load_summary_rows(
    table: pa.Table, stores: dict[ModelKey, ModelWindows], usable: set[ModelKey], documents: dict[str, list[str]]
) -> None:
    """Format 1: one row per summary, summaries rebuilt and packed into the rings."""
    parts: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for row in table.to_pylist():
        if row["part"] == "document":
            documents.setdefault(row["name"], []).append(row["payload"])
            continue
        key = (row["model"], row["model_version"])
        if key not in usable:
            continue
        slot = parts.setdefault((*key, row["window"], row["bucket_start"]), {"features": {}})
        store = stores[key]
        profile = store.profile
        if row["part"] == "bucket":
            slot["records"], slot["labels"] = row["records"], row["labels"]
        elif row["part"] == "feature":
            slot["features"][row["name"]] = summary_with_counts(row, _reference(profile, row["name"]).bins)
        elif row["part"] == "performance":
            slot["performance"] = performance_from_json(profile.metadata.task, row["payload"])
        else:
            slot[row["part"]] = summary_with_counts(row, getattr(profile, row["part"]).bins)
    for (model, version, window, start), slot in parts.items():
        stores[(model, version)].buckets[window][start] = Bucket(
            records=slot.get("records", 0),
            features=slot["features"],
            prediction=slot.get("prediction"),
            label=slot.get("label"),
            performance=slot.get("performance"),
            loss=slot.get("loss"),
            labels=slot.get("labels", 0),
        )


def _reference(profile: ReferenceProfile, name: str) -> ColumnSummary:
    """The reference a stored feature row is over (a feature's, or a multiclass model's class score's)."""
    reference = reference_of(profile, name)
    if reference is None:
        raise KeyError(name)
    return reference
