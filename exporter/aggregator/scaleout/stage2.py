"""Stage 2 of scale-out: each model's one owner merges its partial summaries and exports it.

Replicas consume ``model-health-summaries`` in the group ``<group_id>-merge``. Stage 1
puts everything about a model on the partition :func:`~exporter.aggregator.scaleout.routing.summary_partition`
names, so whoever holds that partition holds the whole model: its windows, its label
join, its counters. State is kept per summaries partition, so it moves between replicas
with the partition.

**Exactly once.** For every (kind, key, source topic, source partition) the state keeps the
end offset of the newest range merged (and which of its parts, for a range sent in several
messages); a message of an older range, or a part already merged, is a re-publication after
a crash and is skipped (``model_health_summaries_duplicates_total``). A range that
starts before it but ends after it cannot come from a correct stage 1 (it would take a
replica that kept publishing after losing its partition): it is merged, counted in
``model_health_summaries_overlaps_total`` and logged as an error.

**The topic is the changelog.** A replica that is assigned a summaries partition rebuilds
its state by replaying the partition from its first offset; merging is deterministic —
the label join's and the request/response join's clock is the publication time stage 1
stamped on each message, not the wall clock — so the replay ends in the same state the
previous owner had. A local
checkpoint per partition (``state.dir``) is the fast path: a replica that gets a partition
back restores it and replays only what came after. Replaying from the start is why the
topic's retention must cover everything the counters should count; with a shorter
retention the totals restart, on a handover, from what is retained (like a process restart
in single mode), while windows stay right as long as retention exceeds the longest window
plus the allowed lateness.

**KServe and Seldon halves** are paired here, where both halves of an inference meet
(stage 1 ships them unjoined in their model's partial, :mod:`exporter.aggregator.scaleout.halves`).
Each partition's state holds the join buffers; their clock is the partition's watermark,
so a half waits its TTL in publication time and a replay pairs, expires and refuses
exactly as the first pass did. A message's halves are offered after its own records are
merged, in order; what pairing makes — records, requests that expired without a response
(no prediction, status ``no_response``), refusals (``unmatched_response``, ...) — is
folded by stage 1's fold (:mod:`exporter.pipeline.fold`) and merged like any partial.
Refusals are counted in the state (under the topic the half came from) and, with a
producer for them, dead-lettered best effort: a replay of the partition writes them again.
The waiting halves are checkpointed with the partition (``export_extra``, in the
single-mode checkpoint's format, :mod:`exporter.decoders.join_state`).

**Sidecar summaries** on the same topic (a sidecar in edge mode, :mod:`exporter.pipeline.summary_wire`:
one bucket of one model version per message, keyed by model) are merged by the same owner,
deduplicated by the producer's sequence number — as long as the sidecar puts them on the
partition :func:`~exporter.aggregator.scaleout.routing.summary_partition` names (otherwise they are
refused as ``misrouted``, not split between owners).

**Lateness** is decided here, per slot bucket (the gcd of the windows' bucket widths): a
slot whose end lies more than ``allowed_lateness_seconds`` behind the model's newest event
time is counted in ``model_health_records_late_total`` and left out. Single mode decides
per record, so a slot straddling the horizon keeps records single mode would drop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from detectors.profile import ReferenceProfile
from exporter.aggregator.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from exporter.aggregator.scaleout import wire
from exporter.aggregator.scaleout.halves import Pairing
from exporter.aggregator.scaleout.routing import summary_partition
from exporter.aggregator.single import Counters, ModelKey
from exporter.config import AggregatorConfig, ModelConfig
from exporter.kafka import Consumer, DeadLetter, KafkaIOError, Message, Producer, TopicPartition
from exporter.pipeline import summary_wire
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.fold import Folder, ModelFold, slot_seconds
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.snapshot import EVALUATION_BUCKETS, HistogramState, PipelineState, Snapshot
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.records import Decoded, Rejected

log = logging.getLogger(__name__)

COMMIT_BACKOFF_SECONDS = 10.0
DedupKey = tuple[str, str, str, int]  # kind, key, source topic, source partition


@dataclass
class MergeStats:
    merged: int = 0
    duplicates: int = 0
    overlaps: int = 0

    def __add__(self, other: MergeStats) -> MergeStats:
        return MergeStats(
            self.merged + other.merged, self.duplicates + other.duplicates, self.overlaps + other.overlaps
        )


@dataclass
class PartitionState:
    """Everything merged from one summaries partition: a function of its log prefix."""

    partition: int
    stores: dict[ModelKey, ModelWindows]
    joiner: LabelJoiner
    pairing: Pairing  # KServe/Seldon halves waiting for their partner
    counters: Counters = field(default_factory=Counters)
    merged_ends: dict[DedupKey, tuple[int, frozenset[int]]] = field(
        default_factory=dict
    )  # → newest range end, its parts merged
    sequences: dict[str, int] = field(default_factory=dict)  # sidecar producer → last sequence merged
    watermark: float = -math.inf  # newest publication time merged: the label join's clock
    next_offset: int = 0
    stats: MergeStats = field(default_factory=MergeStats)
    dirty: bool = False

    def export_extra(self) -> dict[str, object]:
        return {
            "joiner": self.joiner.export_state(),
            "halves": self.pairing.export_state(),
            "counters": self.counters.export(),
            "merged_ends": [[*key, end, sorted(parts)] for key, (end, parts) in sorted(self.merged_ends.items())],
            "sequences": dict(self.sequences),
            "watermark": self.watermark if math.isfinite(self.watermark) else None,
            "stats": [self.stats.merged, self.stats.duplicates, self.stats.overlaps],
        }

    def import_extra(self, extra: Mapping[str, object]) -> None:
        self.joiner.import_state(extra.get("joiner", {}))  # type: ignore[arg-type]
        self.pairing.import_state(extra.get("halves", {}))  # type: ignore[arg-type]
        self.counters = Counters.restore(extra.get("counters", {}))  # type: ignore[arg-type]
        self.merged_ends = {
            (str(k), str(n), str(t), int(p)): (int(e), frozenset(int(q) for q in qs))
            for k, n, t, p, e, qs in extra.get("merged_ends", [])
        }  # type: ignore[union-attr]
        self.sequences = {str(k): int(v) for k, v in extra.get("sequences", {}).items()}  # type: ignore[union-attr]
        watermark = extra.get("watermark")
        self.watermark = -math.inf if watermark is None else float(watermark)  # type: ignore[arg-type]
        self.stats = MergeStats(*(int(v) for v in extra.get("stats", [0, 0, 0])))  # type: ignore[union-attr]


class MergeStage:
    """Stage 2: summaries partitions → per-model windows, label join, evaluation."""

    def __init__(
        self,
        config: AggregatorConfig,
        models: dict[ModelKey, tuple[ModelConfig, ReferenceProfile]],
        consumer: Consumer,
        summary_partitions: int,
        clock: Callable[[], float] = time.time,
        trained_times: Callable[[], Mapping[ModelKey, float]] | None = None,
        extra_lag: Callable[[], dict[tuple[str, int], int]] | None = None,
        dead_letters: Producer | None = None,
    ) -> None:
        self.config = config
        # Refusals of pairing (best effort: a replay writes them again).
        self._dead_letters = dead_letters
        self.dead_letter = DeadLetter(dead_letters, config.kafka.deadletter_topic) if dead_letters is not None else None
        self.consumer = consumer
        self.topic = config.kafka.summaries_topic
        self.summary_partitions = summary_partitions
        self.clock = clock
        self.trained_times = trained_times or dict
        self.extra_lag = extra_lag or dict
        self.models = {key: model for key, (model, _) in models.items()}
        self.profiles = {key: profile for key, (_, profile) in models.items()}
        self.windows = [WindowSpec(w.name, w.bucket_seconds, w.buckets) for w in config.windows]
        # Folds the records paired here as stage 1 folds what it decodes.
        self.folder = Folder(self.profiles, slot_seconds(w.bucket_seconds for w in config.windows))
        self.versions = self.folder.versions
        self.states: dict[int, PartitionState] = {}
        self.lock = threading.Lock()
        self.lag: dict[tuple[str, int], int] = {}
        self.state_dir = Path(config.state.dir) / "scale-out"
        self._snapshot = Snapshot(evaluated_at=0.0)
        self._stats = MergeStats()
        self._latency: dict[ModelKey, HistogramState] = {}
        self._durations = HistogramState.empty(EVALUATION_BUCKETS)
        self._checkpoint_at: float | None = None
        self._evaluated_at: float | None = None
        self._commit_after = 0.0

    # ------------------------------------------------------------------ partitions and state

    def owned_models(self, partition: int) -> list[ModelKey]:
        """The configured models whose summaries go to ``partition``."""
        return [key for key in self.profiles if summary_partition(key[0], self.summary_partitions) == partition]

    def new_state(self, partition: int) -> PartitionState:
        stores = {
            key: ModelWindows(self.profiles[key], self.windows, self.config.allowed_lateness_seconds)
            for key in self.owned_models(partition)
        }
        return PartitionState(
            partition,
            stores,
            LabelJoiner(self.config.labels.join_ttl_seconds, self.config.labels.max_pending),
            Pairing(self.config.kafka.predictions_topic),
        )

    def checkpoint_path(self, partition: int) -> Path:
        return self.state_dir / f"{self.topic}-{partition}.parquet"

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], self._on_assign, self._on_revoke)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            for tp in partitions:
                state = self.restore(tp.partition)
                self.states[tp.partition] = state
                # From the checkpoint's offset, or replay the whole partition.
                self.consumer.seek(tp.topic, tp.partition, state.next_offset)
                log.info(
                    "summaries[%d]: owning %d model version(s), replaying from offset %d",
                    tp.partition,
                    len(state.stores),
                    state.next_offset,
                )

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            for tp in partitions:
                state = self.states.pop(tp.partition, None)
                if state is not None and state.dirty:
                    self._save(state)

    def restore(self, partition: int) -> PartitionState:
        """The partition's local checkpoint if it is usable, else a fresh state (offset 0)."""
        state = self.new_state(partition)
        path = self.checkpoint_path(partition)
        if not path.exists():
            return state
        try:
            checkpoint = load_checkpoint(path, state.stores)
        except Exception as error:  # noqa: BLE001 - a bad local copy only costs a replay
            log.warning("%s: unreadable (%s); replaying the partition instead", path, error)
            return self.new_state(partition)
        if checkpoint is None:
            return self.new_state(partition)
        expected = {f"{m}\x1f{v}": self.profiles[(m, v)].metadata.created_at for m, v in state.stores}
        if (
            checkpoint.extra.get("profiles") != expected
            or checkpoint.extra.get("summary_partitions") != self.summary_partitions
        ):
            log.info("%s was written for other models, profiles or partitions; replaying the partition instead", path)
            return self.new_state(partition)
        state.import_extra(checkpoint.extra)
        state.next_offset = checkpoint.offsets.get((self.topic, partition), 0)
        return state

    def _save(self, state: PartitionState) -> None:
        extra = state.export_extra()
        extra["profiles"] = {f"{m}\x1f{v}": self.profiles[(m, v)].metadata.created_at for m, v in state.stores}
        extra["summary_partitions"] = self.summary_partitions
        save_checkpoint(
            self.checkpoint_path(state.partition),
            state.stores,
            Checkpoint({(self.topic, state.partition): state.next_offset}, extra),
        )
        state.dirty = False

    def checkpoint(self, commit: bool = True) -> None:
        """Write every changed partition's state; commit the merge group's offsets for lag tools."""
        with self.lock:
            for state in self.states.values():
                if state.dirty:
                    self._save(state)
            offsets = {(self.topic, p): s.next_offset for p, s in self.states.items()}
        self._checkpoint_at = self.clock()
        self._flush_dead_letters()
        if commit and offsets and self.clock() >= self._commit_after:
            try:
                self.consumer.commit(offsets)
            except Exception as error:  # noqa: BLE001 - the log and the checkpoints are the truth
                self._commit_after = self.clock() + COMMIT_BACKOFF_SECONDS
                log.info("merge-group commit failed (it only serves lag tools): %s", error)

    # ------------------------------------------------------------------ merging

    def poll_once(self) -> int:
        kafka = self.config.kafka
        messages = self.consumer.poll(kafka.poll_timeout_seconds, kafka.max_poll_records)
        if messages:
            with self.lock:
                for message in messages:
                    state = self.states.get(message.partition)
                    if state is None or message.topic != self.topic or message.offset < state.next_offset:
                        continue
                    self.merge(state, message)
                    state.next_offset = message.next_offset
                    state.dirty = True
        self._update_lag()
        return len(messages)

    def merge(self, state: PartitionState, message: Message) -> None:
        """Merge one summaries message into ``state`` (the caller holds the lock)."""
        try:
            summary = wire.SummaryRange.of(message)
        except wire.WireError as error:
            self._refuse(state, error, message)
            return
        if summary is None:
            if dict(message.headers).get(summary_wire.CONTENT_TYPE_HEADER[0]) == summary_wire.CONTENT_TYPE_HEADER[1]:
                self._merge_sidecar(state, message)
            else:
                self._refuse(
                    state, wire.WireError("unknown_format", "neither a partial nor a sidecar summary"), message
                )
            return
        key: DedupKey = (summary.kind, summary.key, summary.source_topic, summary.source_partition)
        last_end, parts = state.merged_ends.get(key, (None, frozenset()))
        if last_end is not None and (summary.end < last_end or (summary.end == last_end and summary.part in parts)):
            state.stats.duplicates += 1
            return
        if last_end is not None and summary.start < last_end < summary.end:
            state.stats.overlaps += 1
            log.error(
                "summaries[%d]: %s overlaps the range merged up to %d; merged anyway",
                state.partition,
                summary,
                last_end,
            )
        # The parts of the newest range are kept as a set: a part lost in a failed produce
        # comes again, after later parts, when the whole range is published again.
        parts = parts | {summary.part} if summary.end == last_end else frozenset({summary.part})
        state.merged_ends[key] = (summary.end, parts)
        # The join's clock moves first: what waited past its TTL by this publication is unmatched.
        state.watermark = max(state.watermark, summary.emitted_at)
        state.joiner.expire(state.watermark)
        expired = state.pairing.expire(state.watermark)
        if expired:
            try:
                self._fold_paired(state, expired, summary.emitted_at)
            except wire.WireError as error:  # cannot happen for partials folded here; never stop merging
                log.error("summaries[%d]: records of expired halves not merged: %s", state.partition, error)
        try:
            if summary_partition(summary.key, self.summary_partitions) != state.partition:
                raise wire.WireError(
                    "misrouted",
                    f"{summary.key!r} belongs on summaries partition {summary_partition(summary.key, self.summary_partitions)}",
                )
            if summary.kind == wire.PIPELINE_KIND:
                self._merge_pipeline(state, wire.decode_pipeline_partial(message.value))
            else:
                self._merge_model(state, summary, message.value)
        except wire.WireError as error:
            self._refuse(state, error, message)
            return
        state.stats.merged += 1

    def _merge_sidecar(self, state: PartitionState, message: Message) -> None:
        """One bucket of a sidecar in edge mode (:mod:`exporter.pipeline.summary_wire`), deduplicated by
        its producer's sequence; lateness as for partials. It carries no event times, so the
        bucket's start stands in for the newest event (and the sidecar exports its own
        last-prediction time)."""
        try:
            header = summary_wire.read_summary_header(message.value)
            if summary_partition(header.model, self.summary_partitions) != state.partition:
                raise wire.WireError(
                    "misrouted",
                    f"{header.model!r} belongs on summaries partition {summary_partition(header.model, self.summary_partitions)}",
                )
            profile = self.profiles.get((header.model, header.model_version))
            if profile is None:
                raise wire.WireError(
                    "unknown_model", f"model {header.model!r} version {header.model_version!r} is not configured here"
                )
            last = state.sequences.get(header.producer_id)
            if last is not None and header.sequence <= last:
                state.stats.duplicates += 1
                return
            header, bucket = summary_wire.decode_summary(message.value, profile)
        except summary_wire.SummaryFormatError as error:
            reason = "profile_mismatch" if "profile" in str(error) else "invalid_summary"
            self._refuse(state, wire.WireError(reason, str(error)), message)
            return
        except wire.WireError as error:
            self._refuse(state, error, message)
            return
        key = (header.model, header.model_version)
        store = state.stores[key]
        if store.base_seconds % header.bucket_seconds:
            self._refuse(
                state,
                wire.WireError(
                    "profile_mismatch",
                    f"{header.bucket_seconds}s buckets do not divide this replica's {store.base_seconds}s",
                ),
                message,
            )
            return
        state.sequences[header.producer_id] = header.sequence
        if header.bucket_start + header.bucket_seconds <= store.newest_event - store.allowed_lateness:
            state.counters.late[header.model] += bucket.records
        else:
            store.add_bucket(header.bucket_start, bucket)
            state.counters.predictions[key] += bucket.records
            if bucket.records:
                store.newest_event = max(store.newest_event, float(header.bucket_start))
        state.stats.merged += 1

    def _refuse(self, state: PartitionState, error: wire.WireError, message: Message) -> None:
        # Not dead-lettered: the message stays in the summaries topic, and every replay would
        # write it again. Counted (a replay recounts it the same) and logged.
        state.counters.rejected[(self.topic, error.reason)] += 1
        log.warning("summaries[%d] offset %d refused (%s): %s", message.partition, message.offset, error.reason, error)

    def _merge_pipeline(self, state: PartitionState, partial: wire.PipelinePartial) -> None:
        state.counters.consumed.update(partial.consumed)
        state.counters.rejected.update(partial.rejected)

    def _merge_model(self, state: PartitionState, summary: wire.SummaryRange, value: bytes) -> None:
        model = summary.key
        if model not in self.versions:
            raise wire.WireError("unknown_model", f"model {model!r} is not configured here")
        partial = wire.decode_model_partial(value, lambda version: self.profiles.get((model, version)))
        if partial.model != model:
            raise wire.WireError("invalid_summary", f"keyed {model!r} but holds {partial.model!r}")
        halves = []
        for carried in partial.halves:
            try:
                side, half = carried.half()
            except (ValueError, KeyError, TypeError, IndexError) as error:
                raise wire.WireError("invalid_summary", f"unreadable request/response half: {error!r}") from None
            if half.model != model:
                raise wire.WireError("invalid_summary", f"a half of {half.model!r} in a partial of {model!r}")
            halves.append((carried, side, half))
        self._merge_partial(state, partial, summary.emitted_at)
        if halves:
            # Paired after the partial's own records, in the log's order, on the partition's clock.
            self._fold_paired(state, state.pairing.offer(halves, state.watermark), summary.emitted_at)

    def _fold_paired(self, state: PartitionState, decoded: dict[str, Decoded], emitted_at: float) -> None:
        """Fold what pairing made — records and refusals — as stage 1 folds decoded records."""
        models: dict[str, ModelFold] = {}
        for topic, part in decoded.items():
            self._reject_paired(state, topic, part.rejected)
            for table in part.predictions:
                self.folder.fold_predictions(
                    models, topic, table, lambda t, items, rows=None: self._reject_paired(state, t, items, rows)
                )
        for model, fold in models.items():
            self._merge_partial(state, self.folder.partial(model, fold), emitted_at)

    def _reject_paired(
        self,
        state: PartitionState,
        topic: str,
        rejected: list[Rejected] | tuple[Rejected, ...],
        rows: int | None = None,
    ) -> None:
        # Counted in the state (a replay counts them the same). Dead letters are best effort
        # and written again by a replay of the partition.
        for item in rejected:
            state.counters.rejected[(topic, item.reason.value)] += 1 if rows is None else rows
            if self.dead_letter is not None:
                try:
                    self.dead_letter.write(item)
                except KafkaIOError as error:
                    log.warning("dead letter of a %s record not written: %s", item.reason.value, error)

    def _merge_partial(self, state: PartitionState, partial: wire.ModelPartial, emitted_at: float) -> None:
        model = partial.model
        counters = state.counters
        for version, part in partial.versions.items():
            # Checked for every version before any is merged: a refused message changes nothing.
            store = state.stores[(model, version)]
            if store.base_seconds % partial.slot_seconds:
                raise wire.WireError(
                    "profile_mismatch",
                    f"slots of {partial.slot_seconds}s do not divide this replica's {store.base_seconds}s buckets",
                )
            known = counters.latency.get((model, version))
            if part.latency is not None and known is not None and part.latency.bounds != known.bounds:
                raise wire.WireError("invalid_summary", "latency histogram with other buckets")
        for version, part in partial.versions.items():
            key = (model, version)
            store = state.stores[key]
            # One horizon for the whole message, as single mode has one per batch.
            horizon = store.newest_event - store.allowed_lateness
            accepted = late = 0
            newest = -math.inf
            for start, bucket in sorted(part.predictions.items()):
                if start + partial.slot_seconds <= horizon:
                    late += bucket.records
                else:
                    store.add_bucket(start, bucket)
                    accepted += bucket.records
                    newest = max(newest, part.newest.get((wire.PREDICTION_ROLE, start), -math.inf))
            if math.isfinite(newest):
                store.newest_event = max(store.newest_event, newest)
                store.last_prediction_at = max(store.last_prediction_at or -math.inf, newest)
            counters.late[model] += late
            counters.predictions[key] += accepted
            counters.errors[key] += part.errors
            if part.latency is not None:
                counters.latency[key] = _add_histograms(counters.latency.get(key), part.latency)
            for start, bucket in sorted(part.labels.items()):
                store.add_bucket(start, bucket)
                newest = part.newest.get((wire.LABEL_ROLE, start), -math.inf)
                if math.isfinite(newest):
                    store.last_label_at = max(store.last_label_at or -math.inf, newest)
            if part.join is not None:
                columns = part.join.to_pydict()
                joined = state.joiner.add_predictions(
                    model,
                    version,
                    columns["request_id"],
                    columns["timestamp"],
                    columns["prediction_score"],
                    columns["prediction_class"],
                    emitted_at,
                )
                for joined_key, pairs in joined.items():
                    state.stores[joined_key].fold_joined(pairs)
        if partial.labels is not None:
            for joined_key, pairs in state.joiner.add_labels(partial.labels, emitted_at).items():
                state.stores[joined_key].fold_joined(pairs)

    def _update_lag(self) -> None:
        try:
            ends = self.consumer.high_watermarks()
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        with self.lock:
            nexts = {p: s.next_offset for p, s in self.states.items()}
        self.lag = {(tp.topic, tp.partition): max(end - nexts.get(tp.partition, end), 0) for tp, end in ends.items()}

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> Snapshot:
        started = time.perf_counter()
        now = self.clock()
        trained = self.trained_times()
        with self.lock:
            models = []
            totals = Counters()
            stats = MergeStats()
            joined: dict[str, int] = {}
            unmatched: dict[str, int] = {}
            pending: dict[str, int] = {}
            for state in self.states.values():
                for key, store in state.stores.items():
                    store.expire(now)
                    config = self.models[key]
                    snapshot = evaluate_model(
                        ModelIdentity(key[0], key[1], config.namespace or ""), store, config.thresholds.rule, now
                    )
                    if key in trained:
                        snapshot = replace(snapshot, trained_at=trained[key])
                    models.append(snapshot)
                counters = state.counters
                for mine, theirs in (
                    (totals.consumed, counters.consumed),
                    (totals.rejected, counters.rejected),
                    (totals.late, counters.late),
                    (totals.predictions, counters.predictions),
                    (totals.errors, counters.errors),
                ):
                    mine.update(theirs)  # type: ignore[attr-defined]
                for key, histogram in counters.latency.items():
                    totals.latency[key] = _add_histograms(totals.latency.get(key), histogram)
                for model, counts in state.joiner.counts.items():
                    joined[model] = joined.get(model, 0) + counts.joined
                    unmatched[model] = unmatched.get(model, 0) + counts.unmatched
                waiting = state.joiner.pending_counts()
                for model in {m for m, _ in state.stores}:
                    pending[model] = pending.get(model, 0) + waiting.get(model, 0)
                stats = stats + state.stats
            pipeline = PipelineState(
                consumed=dict(totals.consumed),
                rejected=dict(totals.rejected),
                late=dict(totals.late),
                predictions=dict(totals.predictions),
                prediction_errors=dict(totals.errors),
                labels_joined=joined,
                labels_unmatched=unmatched,
                labels_pending=pending,
                consumer_lag={**self.extra_lag(), **self.lag},
            )
        self._stats = stats
        self._latency = dict(totals.latency)
        self._durations = self._durations.observe(time.perf_counter() - started)
        self._evaluated_at = self.clock()
        self._snapshot = Snapshot(
            evaluated_at=now,
            models=tuple(sorted(models, key=lambda m: (m.model, m.model_version))),
            pipeline=pipeline,
            evaluation_duration=self._durations,
            checkpoint_last_success=self._checkpoint_at,
            evaluation_last_success=self._evaluated_at,
        )
        return self._snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def latency(self) -> dict[ModelKey, HistogramState]:
        return dict(self._latency)

    def stats(self) -> MergeStats:
        return self._stats

    def evaluate_safely(self) -> None:
        try:
            self.evaluate()
        except Exception:  # noqa: BLE001 - a failed pass must not stop the schedule
            log.exception("evaluation failed; the previous snapshot stays")

    def _flush_dead_letters(self) -> None:
        if self._dead_letters is None:
            return
        try:
            self._dead_letters.flush(5.0)
        except KafkaIOError as error:
            log.warning("dead letters of stage 2 not all delivered (best effort): %s", error)

    def close(self) -> None:
        try:
            self.checkpoint(commit=False)
        except (OSError, KafkaIOError) as error:
            log.warning("final checkpoint failed (a replay rebuilds it): %s", error)
        finally:
            self.consumer.close()
            if self._dead_letters is not None:
                try:
                    self._dead_letters.close()
                except Exception as error:  # noqa: BLE001 - best effort at shutdown
                    log.warning("closing the dead-letter producer: %s", error)


def _add_histograms(a: HistogramState | None, b: HistogramState) -> HistogramState:
    if a is None:
        return b
    if a.bounds != b.bounds:
        raise wire.WireError("invalid_summary", "latency histograms with different buckets")
    return HistogramState(a.bounds, tuple(int(x) + int(y) for x, y in zip(a.counts, b.counts)), a.total + b.total)
