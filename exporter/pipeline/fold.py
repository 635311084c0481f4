"""Folding decoded records into per-model partials: one fold for both stages of scale-out.

Stage 1 folds what it decodes from a source range; stage 2 folds the records it makes by
pairing KServe/Seldon request and response halves (:mod:`exporter.aggregator.scaleout.halves`). Both
go through :class:`Folder`, so a paired record is folded — grouped, refused, counted,
bucketed by slot — exactly as it would have been had stage 1 paired it, and then merged
into the owner's windows by the same code as any partial.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.profile import ReferenceProfile
from exporter.aggregator.scaleout import wire
from exporter.config import DEFAULT_LATENCY_BUCKETS
from exporter.pipeline.model_versions import ModelKey, resolve_model, versions_by_model
from exporter.pipeline.snapshot import HistogramState
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.records import LABEL_SCHEMA, Reason, Rejected

SLOT = "slot"
JOIN_COLUMNS = ["request_id", "timestamp", "prediction_score", "prediction_class"]

# topic, refused items, rows each (None: one each) → counted and dead-lettered by the caller.
Reject = Callable[[str, Iterable[Rejected], "int | None"], None]


@dataclass
class VersionFold:
    """What one range holds for one model version."""

    predictions: ModelWindows  # one window, one slot wide: a ring of slot buckets
    labels: ModelWindows
    errors: int = 0
    latency: HistogramState | None = None
    newest: dict[tuple[str, int], float] = field(default_factory=dict)  # (role, slot start) → newest event time
    join: list[pa.Table] = field(default_factory=list)


@dataclass
class ModelFold:
    versions: dict[str, VersionFold] = field(default_factory=dict)
    labels: list[pa.Table] = field(default_factory=list)
    halves: list[wire.CarriedHalf] = field(default_factory=list)  # unjoined, for the owner to pair


def slot_seconds(bucket_seconds: Iterable[int]) -> int:
    """The finest boundary every window shares, as ModelWindows folds by."""
    return functools.reduce(math.gcd, list(bucket_seconds))


class Folder:
    """Folds prediction and label tables into :class:`ModelFold` s (the rules of
    ``Aggregator._fold_predictions``/``_fold_labels``, with lateness and the label join left
    to the model's owner)."""

    def __init__(self, profiles: dict[ModelKey, ReferenceProfile], slot: int) -> None:
        self.profiles = profiles
        self.slot_seconds = slot
        self._slot = [WindowSpec(SLOT, slot, 1)]
        self.versions = versions_by_model(profiles)

    def version_fold(self, models: dict[str, ModelFold], key: ModelKey) -> VersionFold:
        model = models.setdefault(key[0], ModelFold())
        fold = model.versions.get(key[1])
        if fold is None:
            profile = self.profiles[key]
            # No lateness here: it depends on what the model's owner has seen (stage 2).
            fold = VersionFold(ModelWindows(profile, self._slot, math.inf), ModelWindows(profile, self._slot, math.inf))
            model.versions[key[1]] = fold
        return fold

    def fold_predictions(self, models: dict[str, ModelFold], topic: str, table: pa.Table, reject: Reject) -> int:
        """Fold one prediction table; returns the rows it held. Same grouping, refusals and
        serving counters as ``Aggregator._fold_predictions``."""
        rows = 0
        groups = table.group_by(["model", "model_version"], use_threads=False).aggregate([])
        for model, version in zip(groups.column("model").to_pylist(), groups.column("model_version").to_pylist()):
            mask = pc.equal(table.column("model"), model)
            mask = pc.and_(
                mask,
                pc.is_null(table.column("model_version"))
                if version is None
                else pc.equal(table.column("model_version"), version),
            )
            part = table.filter(pc.fill_null(mask, False))
            key = resolve_model(self.versions, model, version)
            if key is None:
                detail = f"{part.num_rows} records for model {model!r} version {version!r}, which is not configured"
                reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, ipc_bytes(part))], part.num_rows)
                continue
            fold = self.version_fold(models, key)
            outcome = fold.predictions.fold_predictions(part)
            accepted = np.ones(part.num_rows, dtype=bool)
            for problem in outcome.problems:
                accepted[problem.rows] = False
                refused = part.take(pa.array(problem.rows))
                detail = f"{problem.detail} ({problem.rows.size} rows)"
                reject(topic, [Rejected(problem.reason, detail, ipc_bytes(refused))], int(problem.rows.size))
            self._newest(fold, wire.PREDICTION_ROLE, part.column("timestamp").to_numpy(zero_copy_only=False)[accepted])
            rows += part.num_rows
            self._serving(fold, part)
            if self.profiles[key].metadata.task is not None:
                keyed = part.filter(pc.is_valid(part.column("request_id")))
                if keyed.num_rows:
                    join = keyed.select(JOIN_COLUMNS)
                    fold.join.append(
                        join.add_column(0, "model_version", pa.array([key[1]] * join.num_rows, pa.string()))
                    )
        return rows

    def fold_labels(self, models: dict[str, ModelFold], topic: str, table: pa.Table, reject: Reject) -> int:
        """Fold one label table; returns the rows kept. As ``Aggregator._fold_labels``, with
        the join left to the model's owner."""
        rows = 0
        known = [m for m in table.column("model").unique().to_pylist() if m in self.versions]
        is_known = pc.is_in(table.column("model"), pa.array(known, pa.string()))
        strays = table.filter(pc.invert(is_known))
        if strays.num_rows:
            detail = f"{strays.num_rows} labels for models that are not configured"
            reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, ipc_bytes(strays))], strays.num_rows)
        for model in known:
            part = table.filter(pc.equal(table.column("model"), model))
            for version in self.versions[model]:
                fold = self.version_fold(models, (model, version))
                fold.labels.fold_labels(part)
                if self.profiles[(model, version)].label is not None:  # as fold_labels counts them
                    self._newest(fold, wire.LABEL_ROLE, part.column("timestamp").to_numpy(zero_copy_only=False))
            models[model].labels.append(part.select(LABEL_SCHEMA.names))
            rows += part.num_rows
        return rows

    def partial(self, model: str, fold: ModelFold) -> wire.ModelPartial:
        """One model's fold as the partial summary stage 2 merges."""
        partial = wire.ModelPartial(model, self.slot_seconds)
        for version, vf in fold.versions.items():
            partial.versions[version] = wire.VersionPartial(
                profile_created_at=self.profiles[(model, version)].metadata.created_at,
                predictions=dict(vf.predictions.buckets[SLOT]),
                labels=dict(vf.labels.buckets[SLOT]),
                errors=vf.errors,
                latency=vf.latency,
                newest=dict(vf.newest),
                join=pa.concat_tables(vf.join) if vf.join else None,
            )
        partial.labels = pa.concat_tables(fold.labels) if fold.labels else None
        partial.halves = list(fold.halves)
        return partial

    def _newest(self, fold: VersionFold, role: str, timestamps: np.ndarray) -> None:
        """Keep each slot's newest event time (slots as ModelWindows folds them)."""
        if timestamps.size == 0:
            return
        timestamps = timestamps.astype(np.float64)
        slots = np.floor(timestamps / self.slot_seconds).astype(np.int64) * self.slot_seconds
        order = np.lexsort((timestamps, slots))
        last = np.r_[slots[order][1:] != slots[order][:-1], True]
        for slot, newest in zip(slots[order][last].tolist(), timestamps[order][last].tolist()):
            key = (role, int(slot))
            fold.newest[key] = max(fold.newest.get(key, -math.inf), newest)

    @staticmethod
    def _serving(fold: VersionFold, part: pa.Table) -> None:
        status = part.column("status").to_pylist()
        fold.errors += sum(1 for s in status if s not in (None, "ok"))
        latency = part.column("latency_ms").drop_null().to_numpy(zero_copy_only=False) / 1000.0
        if latency.size:
            state = fold.latency or HistogramState.empty(DEFAULT_LATENCY_BUCKETS)
            below = np.searchsorted(np.sort(latency), np.asarray(state.bounds), side="right")
            counts = tuple(int(c) + int(b) for c, b in zip(state.counts, [*below.tolist(), latency.size]))
            fold.latency = HistogramState(state.bounds, counts, state.total + float(latency.sum()))


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
