"""Join shards: a hot model's label join spread over several summaries partitions.

Without them (``kafka.join_shards: 0``) a model's owner meets every one of its predictions
with its label: per-record work in the one process that owns the model, which bounds how
far one model spreads over stage-1 replicas (``benchmarks/scaleout.py``). With ``N`` shards,
stage 1 splits each model partial's join and label rows by request key
(:func:`split_join`, :func:`~exporter.aggregator.scaleout.routing.join_shards_of`) and sends
each shard's rows as a ``join`` message keyed :func:`~exporter.aggregator.scaleout.routing.join_key`,
which routes it to a summaries partition of its own — the way Kafka Streams repartitions a
join by its key. Whoever holds that partition joins the shard (:class:`ShardJoins`, one label
join for every shard the partition holds, on the partition's watermark like the owner's) and
sends the model's owner a ``joined`` report per message that changed the shard: performance
slots folded from the pairs made, and the shard's counts. The owner adds the slots as it adds
pairs it joined itself (:class:`~exporter.pipeline.owner.OwnedModels`); its cost per
record of the model's traffic no longer includes the join.

**Exactly once** needs nothing new: a report's source is the shard's summaries partition
and the one offset whose merge made it (``[offset, offset + 1)``), keyed by the shard's join
key, so the owner skips it by offset like any re-published range. Merging is deterministic,
so a replay of the shard's partition — after a crash, a handover, or by a replica that lost
the partition and has not noticed yet — makes the same reports for the same offsets, and the
owner merges one copy. What stays to send (:attr:`ShardJoins.outbox`) keeps its partition
from being checkpointed until it is acknowledged: a state on disk or in a shared snapshot has
always sent every report of the offsets it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from detectors.profile import ReferenceProfile
from exporter.aggregator.scaleout.routing import join_shard_of, join_shards_of
from exporter.aggregator.scaleout.wire import ShardReport, slot_rings
from exporter.pipeline.buckets import Bucket, Joined, pairs_performance
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.model_versions import ModelKey
from exporter.pipeline.packed import BucketLayout, OpenBucket, PackedBucket
from exporter.pipeline.partial import JoinReport, ModelPartial, VersionPartial
from exporter.pipeline.request_keys import request_keys


def split_join(partial: ModelPartial, shards: int) -> tuple[ModelPartial, dict[int, ModelPartial]]:
    """``partial`` without its join and label rows, and those rows by join shard (stage 1)."""
    rest = ModelPartial(partial.model, partial.slot_seconds, halves=partial.halves)
    by_shard: dict[int, ModelPartial] = {}

    def shard_partial(shard: int) -> ModelPartial:
        return by_shard.setdefault(shard, ModelPartial(partial.model, partial.slot_seconds))

    for version, part in partial.versions.items():
        rest.versions[version] = VersionPartial(
            part.profile_created_at, part.predictions, part.labels, part.errors, part.latency, part.newest
        )
        if part.join is not None and part.join.num_rows:
            for shard, rows in _by_shard(part.join, shards):
                shard_partial(shard).versions[version] = VersionPartial(part.profile_created_at, join=rows)
    if partial.labels is not None and partial.labels.num_rows:
        for shard, rows in _by_shard(partial.labels, shards):
            shard_partial(shard).labels = rows
    if partial.halves:
        # Both halves of an inference go where its id routes (CarriedHalf.pairs_on), which is
        # where a one-row request's label goes too; the records of a request of several rows
        # go on to the shards of their own ids, <id>/<row> (stage 2's _route_paired).
        keys = request_keys(partial.model, [half.pairs_on for half in partial.halves])
        for half, shard in zip(partial.halves, join_shards_of(keys, shards).tolist()):
            shard_partial(shard).halves.append(half)
        rest.halves = []
    return rest, dict(sorted(by_shard.items()))


def _by_shard(table: pa.Table, shards: int) -> list[tuple[int, pa.Table]]:
    """``table``'s rows by the join shard of their ``request_key``, in row order within each."""
    keys = table.column("request_key").to_numpy()
    of = join_shards_of(keys, shards)
    present = np.unique(of).tolist()
    if len(present) == 1:
        return [(present[0], table)]
    return [(shard, table.filter(pa.array(of == shard))) for shard in present]


def combine_reports(reports: list[ShardReport], layout_of: Callable[[str, str], BucketLayout]) -> list[ModelPartial]:
    """The reports of one message as one partial per model, in the order models first appear:
    slots added per (version, role, slot), errors and latency histograms summed, the newest
    event time per slot the latest, counts kept report by report. Merged so, the message's
    records are judged late or not against the horizon before it, as a poll's records are in
    single mode (and a stage-1 range's by its owner)."""
    combined: dict[str, ModelPartial] = {}
    open_slots: dict[tuple[str, str, str, int], OpenBucket] = {}
    for report in reports:
        partial = report.partial
        target = combined.setdefault(partial.model, ModelPartial(partial.model, partial.slot_seconds))
        target.join_reports += partial.join_reports
        for version, part in partial.versions.items():
            into = target.versions.setdefault(version, VersionPartial(part.profile_created_at))
            into.errors += part.errors
            if part.latency is not None:
                into.latency = part.latency if into.latency is None else into.latency + part.latency
            for (role, start), newest in part.newest.items():
                into.newest[(role, start)] = max(newest, into.newest.get((role, start), newest))
            rings, targets = slot_rings(part), slot_rings(into)
            for role, ring in rings.items():
                for start, bucket in ring.items():
                    known = targets[role].get(start)
                    if known is None:
                        targets[role][start] = bucket
                        continue
                    key = (partial.model, version, role, start)
                    if key not in open_slots:
                        open_slots[key] = OpenBucket(layout_of(partial.model, version))
                        open_slots[key].add(known)
                    open_slots[key].add(bucket)
    for (model, version, role, start), added in open_slots.items():
        slot_rings(combined[model].versions[version])[role][start] = added.packed()
    return list(combined.values())


@dataclass(frozen=True)
class Forward:
    """Join rows of records paired here whose shard is on another partition (a request of
    several rows gets ids ``<id>/<row>``, which route apart): a ``join`` message the partition
    owes that shard, its source the offset whose merge made them, ``[offset, offset + 1)``."""

    key: str  # the shard's join key
    offset: int
    emitted_at: float
    partial: ModelPartial


@dataclass
class ShardJoins:
    """The join shards one summaries partition holds, and the reports they owe their owners.

    One :class:`LabelJoiner` holds every shard, each under its join key as the model name (so
    ``max_pending`` bounds the partition's shards together, as it bounds an owner's models).
    :meth:`meet` and :meth:`expire` change it; :meth:`reports` then says what changed, per
    shard, since its last report.
    """

    joiner: LabelJoiner
    profiles: Mapping[ModelKey, ReferenceProfile]
    slot_seconds: int
    # join key → (joined, unmatched, pending) as last reported
    reported: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    outbox: list[ShardReport] = field(default_factory=list)  # reports not yet acknowledged, in order
    forward: list[Forward] = field(default_factory=list)  # other messages not yet acknowledged
    _pairs: dict[tuple[str, str], list[Joined]] = field(default_factory=dict)  # (join key, version) → made
    _touched: set[str] = field(default_factory=set)

    def meet(self, key: str, partial: ModelPartial, now: float) -> None:
        """A ``join`` message's rows meet the shard ``key``."""
        for version, part in partial.versions.items():
            if part.join is not None and part.join.num_rows:
                self._hold(self.joiner.add_join_rows(key, version, part.join, now))
        labels = partial.labels
        if labels is not None and labels.num_rows:
            at = labels.schema.get_field_index("model")
            labels = labels.set_column(at, labels.schema.field(at), pa.array([key] * labels.num_rows, pa.string()))
            self._hold(self.joiner.add_labels(labels, now))
        self._touched.add(key)

    def expire(self, now: float) -> None:
        self.joiner.expire(now)

    def _hold(self, joined: Mapping[tuple[str, str], Joined]) -> None:
        for key_version, pairs in joined.items():
            self._pairs.setdefault(key_version, []).append(pairs)

    def reports(self, offset: int, emitted_at: float) -> None:
        """Queue, for every shard that changed since its last report, what it made: made at
        ``offset`` of the partition, whose watermark was then ``emitted_at``."""
        dropped = self.joiner.take_dropped()
        changed = self._touched | dropped | {key for key, _ in self._pairs}
        if not changed:
            return
        pending = self.joiner.pending_counts()
        made: dict[str, dict[str, dict[int, Bucket | PackedBucket]]] = {}
        for (key, version), parts in sorted(self._pairs.items()):
            profile = self.profiles[(join_shard_of(key)[0], version)]
            made.setdefault(key, {})[version] = dict(pairs_performance(profile, parts, self.slot_seconds))
        self._pairs.clear()
        self._touched.clear()
        for key in sorted(changed):
            counts = self.joiner.counts.get(key)
            joined, unmatched = (0, 0) if counts is None else (counts.joined, counts.unmatched)
            now = (joined, unmatched, pending.get(key, 0))
            last = self.reported.get(key, (0, 0, 0))
            versions = made.get(key, {})
            if now == last and not versions:
                continue
            self.reported[key] = now
            model, shard = join_shard_of(key)
            report = ModelPartial(
                model,
                self.slot_seconds,
                {
                    version: VersionPartial(self.profiles[(model, version)].metadata.created_at, performance=slots)
                    for version, slots in versions.items()
                },
                join_reports=[JoinReport(shard, now[0] - last[0], now[1] - last[1], now[2])],
            )
            self.outbox.append(ShardReport(key, offset, emitted_at, report))

    @property
    def unsent(self) -> bool:
        return bool(self.outbox or self.forward)

    # Checkpoint support: the shards are part of their partition's exactly-once state.
    def export_state(self) -> dict[str, object]:
        if self.unsent or self._pairs:
            raise RuntimeError("join shards with unsent reports are not checkpointed")
        return {
            "joiner": self.joiner.export_state(),
            "reported": [[key, *counts] for key, counts in sorted(self.reported.items())],
        }

    def import_state(self, state: Mapping[str, object]) -> None:
        self.joiner.import_state(state.get("joiner", {}))  # type: ignore[arg-type]  # as exported
        self.reported = {
            str(key): (int(joined), int(unmatched), int(pending))
            for key, joined, unmatched, pending in state.get("reported", [])  # type: ignore[attr-defined]
        }
