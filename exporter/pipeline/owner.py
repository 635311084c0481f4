"""The models one consumer owns: their windows, the label join and the counters.

Single mode owns every configured model; in scale-out each stage-2 replica owns the models of
the summaries partitions it holds (one :class:`OwnedModels` per partition). Either way partials
are merged here, by one piece of code:

1. every version of the partial is checked first (its slot width divides the windows'
   buckets, its latency histogram has the same buckets), so a refused partial changes nothing;
2. prediction slots go through the windows' lateness rule (:meth:`ModelWindows.add_predictions`);
   accepted records, late records, errors and latency are counted;
3. label slots are added (never late);
4. the predictions' join rows and then the partial's labels are offered to the label join;
   pairs it completes are folded into performance at the prediction's event time — in
   batches: pairs wait (at most :data:`JOINED_BATCH` per model version) and are folded before
   any evaluation or checkpoint reads the windows. Performance summaries are exact and add
   in any order, so the batching changes nothing but the cost (one fold per slot per batch,
   not per merge);
5. with scale-out's join shards (``kafka.join_shards``) the join runs elsewhere, and what a
   shard made arrives as its report: performance slots, added like joined pairs, and counts
   — pairs and unmatched entries added to the join's counters, the predictions waiting at
   the shard kept as its newest gauge (:meth:`OwnedModels.pending_counts` sums the shards).

The label join's clock is the caller's: wall-clock time in single mode, the partition's
watermark (publication time) in stage 2, so a replay joins and expires exactly as the first
pass did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from detectors.profile import ReferenceProfile
from exporter.pipeline.buckets import Joined
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.model_versions import ModelKey, versions_by_model
from exporter.pipeline.partial import LABEL_ROLE, PREDICTION_ROLE, ModelPartial, PipelinePartial
from exporter.pipeline.snapshot import HistogramState
from exporter.pipeline.windows import ModelWindows, WindowSpec

JOINED_BATCH = 50_000  # joined pairs a model version holds before they are folded


class PartialMismatch(ValueError):
    """A partial that cannot be merged into these windows (``reason`` is a rejected-reason label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Counters:
    """Monotonic totals; checkpointed with the state so they stay exact across restarts."""

    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, format)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, reason)
    duplicates: Counter[str] = field(default_factory=Counter)  # topic: the same inference again, dropped
    late: Counter[str] = field(default_factory=Counter)  # model
    predictions: Counter[ModelKey] = field(default_factory=Counter)
    errors: Counter[ModelKey] = field(default_factory=Counter)
    latency: dict[ModelKey, HistogramState] = field(default_factory=dict)

    def add_latency(self, key: ModelKey, histogram: HistogramState) -> None:
        known = self.latency.get(key)
        self.latency[key] = histogram if known is None else known + histogram

    @classmethod
    def total(cls, parts: Iterable[Counters]) -> Counters:
        out = cls()
        for part in parts:
            out.consumed.update(part.consumed)
            out.rejected.update(part.rejected)
            out.duplicates.update(part.duplicates)
            out.late.update(part.late)
            out.predictions.update(part.predictions)
            out.errors.update(part.errors)
            for key, histogram in part.latency.items():
                out.add_latency(key, histogram)
        return out

    def export(self) -> dict[str, list[list[object]]]:
        return {
            "consumed": [[*k, v] for k, v in self.consumed.items()],
            "rejected": [[*k, v] for k, v in self.rejected.items()],
            "duplicates": [[k, v] for k, v in self.duplicates.items()],
            "late": [[k, v] for k, v in self.late.items()],
            "predictions": [[*k, v] for k, v in self.predictions.items()],
            "errors": [[*k, v] for k, v in self.errors.items()],
            "latency": [[*k, list(h.bounds), list(h.counts), h.total] for k, h in self.latency.items()],
        }

    @classmethod
    def restore(cls, data: Mapping[str, list[list[object]]]) -> Counters:
        def pairs(name: str) -> dict[tuple[str, str], int]:
            return {(str(a), str(b)): int(v) for a, b, v in data.get(name, [])}  # type: ignore[call-overload]

        out = cls()
        out.consumed.update(pairs("consumed"))
        out.rejected.update(pairs("rejected"))
        out.duplicates.update({str(a): int(v) for a, v in data.get("duplicates", [])})  # type: ignore[call-overload]
        out.late.update({str(a): int(v) for a, v in data.get("late", [])})  # type: ignore[call-overload]
        out.predictions.update(pairs("predictions"))
        out.errors.update(pairs("errors"))
        for model, version, bounds, counts, total in data.get("latency", []):
            out.latency[(str(model), str(version))] = HistogramState(
                tuple(float(b) for b in bounds),  # type: ignore[attr-defined]  # JSON lists
                tuple(int(c) for c in counts),  # type: ignore[attr-defined]
                float(total),  # type: ignore[arg-type]
            )
        return out


class OwnedModels:
    """The windows, label join and counters of the models one consumer owns."""

    def __init__(
        self,
        profiles: Mapping[ModelKey, ReferenceProfile],
        windows: list[WindowSpec],
        allowed_lateness: float,
        joiner: LabelJoiner,
    ) -> None:
        self.stores = {key: ModelWindows(profile, windows, allowed_lateness) for key, profile in profiles.items()}
        self.versions = versions_by_model(self.stores)
        self.joiner = joiner
        self.counters = Counters()
        # Joined pairs not yet folded, per model version.
        self._joined: dict[ModelKey, list[Joined]] = {}
        self._joined_rows: dict[ModelKey, int] = {}
        # (model, join shard) → predictions waiting at that shard, as its newest report said.
        self.shard_pending: dict[tuple[str, int], int] = {}

    def merge(self, partial: ModelPartial, now: float) -> None:
        """Merge one model's partial (the rules of the module docstring); ``now`` is the join's clock.

        Raises :class:`PartialMismatch` before changing anything when it cannot be merged.
        """
        model = partial.model
        counters = self.counters
        for version, part in partial.versions.items():
            store = self.stores.get((model, version))
            if store is None:
                raise PartialMismatch("unknown_model", f"model {model!r} version {version!r} is not owned here")
            if store.base_seconds % partial.slot_seconds:
                raise PartialMismatch(
                    "profile_mismatch",
                    f"slots of {partial.slot_seconds}s do not divide this replica's {store.base_seconds}s buckets",
                )
            known = counters.latency.get((model, version))
            if part.latency is not None and known is not None and part.latency.bounds != known.bounds:
                raise PartialMismatch("invalid_summary", "latency histogram with other buckets")
        for version, part in partial.versions.items():
            key = (model, version)
            store = self.stores[key]
            accepted, late = store.add_predictions(
                partial.slot_seconds, part.predictions, part.newest_of(PREDICTION_ROLE)
            )
            counters.late[model] += late
            counters.predictions[key] += accepted
            counters.errors[key] += part.errors
            if part.latency is not None:
                counters.add_latency(key, part.latency)
            store.add_labels(part.labels, part.newest_of(LABEL_ROLE))
            if part.performance:
                store.add_performance(part.performance)
            if part.join is not None and part.join.num_rows:
                for joined_key, pairs in self.joiner.add_join_rows(model, version, part.join, now).items():
                    self._hold(joined_key, pairs)
        if partial.labels is not None and partial.labels.num_rows:
            for joined_key, pairs in self.joiner.add_labels(partial.labels, now).items():
                self._hold(joined_key, pairs)
        for report in partial.join_reports:
            self.joiner.add_counts(model, report.joined, report.unmatched)
            self.shard_pending[(model, report.shard)] = report.pending

    def pending_counts(self) -> dict[str, int]:
        """Predictions waiting for their label, per model: here and at the model's join shards."""
        pending = self.joiner.pending_counts()
        for (model, _), count in self.shard_pending.items():
            pending[model] = pending.get(model, 0) + count
        return pending

    def _hold(self, key: ModelKey, pairs: Joined) -> None:
        self._joined.setdefault(key, []).append(pairs)
        self._joined_rows[key] = self._joined_rows.get(key, 0) + int(pairs.timestamps.size)
        if self._joined_rows[key] >= JOINED_BATCH:
            self._fold_joined(key)

    def fold_joined(self) -> None:
        """Fold every joined pair still held: before anything reads or writes the windows."""
        for key in list(self._joined_rows):
            self._fold_joined(key)

    def _fold_joined(self, key: ModelKey) -> None:
        self.stores[key].fold_joined(self._joined.pop(key))
        self._joined_rows.pop(key, None)

    def merge_pipeline(self, partial: PipelinePartial) -> None:
        self.counters.consumed.update(partial.consumed)
        self.counters.rejected.update(partial.rejected)
        self.counters.duplicates.update(partial.duplicates)

    def expire_windows(self, now: float) -> None:
        """Drop buckets no window reaches any more (the join expires on its own clock)."""
        self.fold_joined()
        for store in self.stores.values():
            store.expire(now)

    def export_state(self) -> dict[str, object]:
        """What a checkpoint keeps besides the windows (which it writes itself: call
        :meth:`fold_joined` first, so no joined pair is left out of them)."""
        return {
            "joiner": self.joiner.export_state(),
            "counters": self.counters.export(),
            "shard_pending": [[model, shard, count] for (model, shard), count in sorted(self.shard_pending.items())],
        }

    def import_state(self, state: Mapping[str, object]) -> None:
        self.joiner.import_state(state.get("joiner", {}))  # type: ignore[arg-type]  # as exported
        self.counters = Counters.restore(state.get("counters", {}))  # type: ignore[arg-type]
        self.shard_pending = {
            (str(model), int(shard)): int(count)
            for model, shard, count in state.get("shard_pending", [])  # type: ignore[attr-defined]
        }
