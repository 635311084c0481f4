"""Event-time windows of one model version: rings of buckets, and the one lateness rule.

Each window (``bucket_seconds × buckets``) keeps a ring of :class:`~exporter.pipeline.buckets.Bucket`
keyed by start time, packed (:mod:`exporter.pipeline.packed`: narrow counts, nonzero bins only at
low traffic, exact sums as bytes) and unpacked when read. Buckets arrive already folded, per *slot* (a width that divides every
window's bucket width — :mod:`exporter.pipeline.fold` uses the gcd of the bucket widths); the
slots that share a window bucket are summed first, so each window bucket takes one merge. A
window is the sum of its buckets that end after ``now − span``, summed in one step.

**Lateness, in every mode.** A slot of predictions is *late* when it ends at or before the
newest event time seen for the model *before this batch* minus ``allowed_lateness``: its
records are counted as late and left out, so a replayed backlog cannot rewrite buckets that
have already been reported. A batch is what a single-mode poll folds for a model, a
scale-out partial (one source range), or one edge summary; within a batch no slot is late
behind another. The rule needs only slot starts and each slot's newest event time, which
is why single mode and scale-out apply it identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

import pyarrow as pa

from detectors.profile import ReferenceProfile
from exporter.pipeline.buckets import (
    Bucket,
    Joined,
    RowProblem,
    SlotFold,
    label_buckets,
    pairs_performance,
    prediction_buckets,
)
from exporter.pipeline.packed import BucketLayout, PackedBucket, PackedRing

# A slot to add: folded here or by stage 1 (a bucket), or read from the wire (packed).
Slot = Bucket | PackedBucket


@dataclass(frozen=True)
class WindowSpec:
    name: str
    bucket_seconds: int
    buckets: int

    @property
    def span(self) -> int:
        return self.bucket_seconds * self.buckets


@dataclass(frozen=True)
class FoldOutcome:
    accepted: int
    late: int
    problems: tuple[RowProblem, ...] = ()


def slot_seconds(bucket_seconds: Iterable[int]) -> int:
    """The finest boundary every window shares: the slot width folds use."""
    return reduce(math.gcd, list(bucket_seconds))


class ModelWindows:
    """The buckets of one model version, for every configured window."""

    def __init__(self, profile: ReferenceProfile, windows: list[WindowSpec], allowed_lateness: float) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        self.profile = profile
        self.windows = {w.name: w for w in windows}
        self.allowed_lateness = float(allowed_lateness)
        self.base_seconds = slot_seconds(w.bucket_seconds for w in windows)
        self.layout = BucketLayout.of(profile)
        # Packed (exporter.pipeline.packed): a bucket is stored in a few narrow arrays, not as summaries.
        self.buckets: dict[str, PackedRing] = {w.name: PackedRing(self.layout) for w in windows}
        self.newest_event = -math.inf
        self.last_prediction_at: float | None = None
        self.last_label_at: float | None = None

    # ------------------------------------------------------------------ adding folded slots

    def add_predictions(self, slot: int, buckets: Mapping[int, Slot], newest: Mapping[int, float]) -> tuple[int, int]:
        """Add one batch of prediction slots (``slot`` seconds wide); returns (accepted, late)."""
        horizon = self.newest_event - self.allowed_lateness
        accepted: list[int] = []
        late = 0
        for start in sorted(buckets):
            if start + slot <= horizon:
                late += buckets[start].records
            else:
                accepted.append(start)
        if not accepted:
            return 0, late
        latest = max((newest[start] for start in accepted if start in newest), default=-math.inf)
        if math.isfinite(latest):
            self.newest_event = max(self.newest_event, latest)
            self.last_prediction_at = max(self.last_prediction_at or -math.inf, latest)
        self._add_all(accepted, [buckets[start] for start in accepted])
        return sum(buckets[start].records for start in accepted), late

    def add_labels(self, buckets: Mapping[int, Slot], newest: Mapping[int, float]) -> None:
        """Add label slots; labels are never late (they arrive long after their predictions)."""
        if not buckets:
            return
        latest = max(newest.values(), default=-math.inf)
        if math.isfinite(latest):
            self.last_label_at = max(self.last_label_at or -math.inf, latest)
        starts = sorted(buckets)
        self._add_all(starts, [buckets[start] for start in starts])

    def add_performance(self, buckets: Mapping[int, Slot]) -> None:
        """Add performance slots (joined pairs, at their predictions' event times)."""
        starts = sorted(buckets)
        self._add_all(starts, [buckets[start] for start in starts])

    # ------------------------------------------------------------------ folding records here

    def fold_predictions(self, table: pa.Table) -> FoldOutcome:
        """Fold a decoded prediction table as one batch (:func:`~exporter.pipeline.buckets.prediction_buckets`
        at this store's slot width, then :meth:`add_predictions`)."""
        folded: SlotFold = prediction_buckets(self.profile, table, self.base_seconds)
        accepted, late = self.add_predictions(self.base_seconds, folded.buckets, folded.newest)
        return FoldOutcome(accepted, late, folded.problems)

    def fold_labels(self, labels: pa.Table) -> None:
        folded = label_buckets(self.profile, labels, self.base_seconds)
        self.add_labels(folded.buckets, folded.newest)

    def fold_joined(self, parts: list[Joined]) -> None:
        """Fold pairs gathered from one or more joins into performance (:func:`pairs_performance`)."""
        self.add_performance(pairs_performance(self.profile, parts, self.base_seconds))

    def _add_all(self, slot_starts: list[int], buckets: list[Slot]) -> None:
        """Add slot buckets (ascending starts) to every window: the slots that share a
        window bucket are summed first, so each window bucket takes one merge."""
        for spec in self.windows.values():
            ring = self.buckets[spec.name]
            pending: list[Slot] = []
            current = 0
            for slot_start, bucket in zip(slot_starts, buckets):
                start = slot_start - slot_start % spec.bucket_seconds
                if pending and start != current:
                    ring.merge(current, pending)
                    pending = []
                current = start
                pending.append(bucket)
            if pending:
                ring.merge(current, pending)

    # ------------------------------------------------------------------ reading

    def window(self, name: str, now: float) -> Bucket:
        """The sum of the window's buckets that overlap ``(now − span, now]``."""
        spec = self.windows[name]
        oldest = now - spec.span
        ring = self.buckets[name]
        return ring.sum([start for start in ring if start + spec.bucket_seconds > oldest and start <= now])

    @property
    def nbytes(self) -> int:
        """Bytes the packed buckets of every window hold (arrays and byte strings)."""
        return sum(ring.nbytes for ring in self.buckets.values())

    def expire(self, now: float) -> None:
        """Forget buckets no window can reach any more."""
        for name, spec in self.windows.items():
            oldest = now - spec.span - self.allowed_lateness
            ring = self.buckets[name]
            for start in [s for s in ring if s + spec.bucket_seconds <= oldest]:
                del ring[start]
