"""Stage 2 of scale-out: each model's one owner merges its partial summaries and exports it.

Replicas consume ``model-health-summaries`` in the group ``<group_id>-merge``. Stage 1
puts everything about a model on the partition :func:`~exporter.aggregator.scaleout.routing.summary_partition`
names, so whoever holds that partition holds the whole model: its windows, its label
join, its counters. State is kept per summaries partition, so it moves between replicas
with the partition.

**Exactly once.** For every (kind, key, source topic, source partition) the state keeps the
end offset of the newest range merged (and which of its parts, for a range sent in several
messages); a message of an older range, or a part already merged, is a re-publication after
a crash (or the late copy of a replica that lost its partition, see stage 1's fence) and is
skipped (``model_health_summaries_duplicates_total``). A range that starts before it but
ends after it cannot come from stage 1's protocol: it is refused, counted in
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
folded by the one fold (:mod:`exporter.pipeline.fold`) and merged like any partial.
Refusals are counted in the state (under the topic the half came from) and, with a
producer for them, dead-lettered best effort: a replay of the partition writes them again.
The waiting halves are checkpointed with the partition (``export_extra``, in the
single-mode checkpoint's format, :mod:`exporter.decoders.join_state`).

**Sidecar summaries** on the same topic (a sidecar in edge mode, :mod:`exporter.pipeline.summary_wire`:
one bucket of one model version per message, keyed by model) are merged by the same owner,
deduplicated by the producer's sequence number — as long as the sidecar puts them on the
partition :func:`~exporter.aggregator.scaleout.routing.summary_partition` names (otherwise they are
refused as ``misrouted``, not split between owners).

**Join shards** (``kafka.join_shards``): a ``join`` message is a shard's rows; the partition
holding the shard joins them (:mod:`exporter.aggregator.scaleout.join_shards`) and, after each
message that changed a shard, owes the model's owner a report, sent at the end of the poll as
a ``joined`` message. The owner merges reports one by one, skipping those whose offset it has
passed. A partition's state is saved only once its reports are acknowledged.

**Merging** a partial — lateness per slot, counters, the label join — is the owner's one
merge (:class:`~exporter.pipeline.owner.OwnedModels`), the same code single mode merges each
poll with; each summaries partition's state holds one.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from detectors.profile import ReferenceProfile
from exporter.aggregator.checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint, save_bytes
from exporter.aggregator.inputs import Models, logger_modes, model_identity
from exporter.aggregator.scaleout import wire
from exporter.aggregator.scaleout.halves import Pairing
from exporter.aggregator.scaleout.join_shards import Forward, ShardJoins, combine_reports, split_join
from exporter.aggregator.scaleout.routing import join_key, join_shard_of, paired_key, summary_partition
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig
from exporter.decoders.inference_pairs import InferenceHalf
from exporter.decoders.joiner import Side
from exporter.kafka import Consumer, DeadLetter, KafkaIOError, Message, Producer, TopicPartition
from exporter.pipeline import summary_wire
from exporter.pipeline.evaluation import Evaluator
from exporter.pipeline.fold import Folder, Partials
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.model_versions import ModelKey
from exporter.pipeline.owner import OwnedModels, PartialMismatch
from exporter.pipeline.packed import BucketLayout
from exporter.pipeline.partial import PREDICTION_ROLE, CarriedHalf, ModelPartial, VersionPartial
from exporter.pipeline.snapshot import HistogramState, Snapshot
from exporter.pipeline.windows import WindowSpec, slot_seconds
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
class SnapshotRestore:
    """A new owner's search for the snapshot its partition's pointer names."""

    covers: int  # the pointer: the snapshot to restore covers the partition up to here
    chunks: dict[str, dict[int, bytes]] = field(default_factory=dict)  # snapshot id → part → data
    seen: int = 0  # offsets read so far while searching


@dataclass
class PartitionState:
    """Everything merged from one summaries partition: a function of its log prefix."""

    partition: int
    owned: OwnedModels  # the models routed here: windows, label join, counters
    pairing: Pairing  # KServe/Seldon halves waiting for their partner
    shards: ShardJoins  # the join shards routed here (kafka.join_shards) and their unsent reports
    paired: list[dict[str, Decoded]] = field(default_factory=list)  # paired while merging a message
    merged_ends: dict[DedupKey, tuple[int, frozenset[int]]] = field(
        default_factory=dict
    )  # → newest range end, its parts merged
    sequences: dict[str, int] = field(default_factory=dict)  # sidecar producer → last sequence merged
    watermark: float = -math.inf  # newest publication time merged: the label join's clock
    next_offset: int = 0
    stats: MergeStats = field(default_factory=MergeStats)
    dirty: bool = False
    # Handover: where the shared snapshot this state must start from is (None: not looked up yet,
    # or not needed), and the chunks of it read so far.
    restoring: SnapshotRestore | None = None
    snapshot_covers: int | None = None  # offset the last published snapshot covered
    snapshot_at: float = -math.inf  # when it was published (clock time)

    def export_extra(self) -> dict[str, object]:
        return {
            **self.owned.export_state(),
            "halves": self.pairing.export_state(),
            "join_shards": self.shards.export_state(),
            "merged_ends": [[*key, end, sorted(parts)] for key, (end, parts) in sorted(self.merged_ends.items())],
            "sequences": dict(self.sequences),
            "watermark": self.watermark if math.isfinite(self.watermark) else None,
            "stats": [self.stats.merged, self.stats.duplicates, self.stats.overlaps],
        }

    def import_extra(self, extra: Mapping[str, object]) -> None:
        self.owned.import_state(extra)
        self.pairing.import_state(extra.get("halves", {}))  # type: ignore[arg-type]
        self.shards.import_state(extra.get("join_shards", {}))  # type: ignore[arg-type]
        self.merged_ends = {
            (str(k), str(n), str(t), int(p)): (int(e), frozenset(int(q) for q in qs))
            for k, n, t, p, e, qs in extra.get("merged_ends", [])  # type: ignore[attr-defined]
        }
        self.sequences = {str(k): int(v) for k, v in extra.get("sequences", {}).items()}  # type: ignore[attr-defined]
        watermark = extra.get("watermark")
        self.watermark = -math.inf if watermark is None else float(watermark)  # type: ignore[arg-type]
        self.stats = MergeStats(*(int(v) for v in extra.get("stats", [0, 0, 0])))  # type: ignore[attr-defined]


class MergeStage:
    """Stage 2: summaries partitions → per-model windows, label join, evaluation."""

    def __init__(
        self,
        config: AggregatorConfig,
        models: Models,
        consumer: Consumer,
        summary_partitions: int,
        clock: Callable[[], float] = time.time,
        trained_times: Callable[[], Mapping[ModelKey, float]] | None = None,
        extra_lag: Callable[[], dict[tuple[str, int], int]] | None = None,
        dead_letters: Producer | None = None,
        snapshots: Consumer | None = None,
    ) -> None:
        self.config = config
        # Shared snapshots need both: the producer publishes them, ``snapshots`` (a member-less
        # group's offsets, :func:`~exporter.aggregator.scaleout.routing.snapshot_group`) points at them.
        self.snapshots = snapshots if dead_letters is not None else None
        self._pending: set[int] = set()  # assigned partitions whose snapshot pointer is still to be read
        # Refusals of pairing (best effort: a replay writes them again).
        self._dead_letters = dead_letters
        self.dead_letter = DeadLetter(dead_letters, config.kafka.deadletter_topic) if dead_letters is not None else None
        if config.kafka.join_shards and dead_letters is None:
            raise ValueError("kafka.join_shards: stage 2 needs its producer to send join shards' reports")
        self.consumer = consumer
        self.topic = config.kafka.summaries_topic
        self.summary_partitions = summary_partitions
        self.clock = clock
        self.extra_lag = extra_lag or dict
        self.profiles = {key: profile for key, (_, profile) in models.items()}
        self.windows = [WindowSpec(w.name, w.bucket_seconds, w.buckets) for w in config.windows]
        # Folds the records paired here as stage 1 folds what it decodes.
        self.folder = Folder(
            self.profiles,
            slot_seconds(w.bucket_seconds for w in self.windows),
            DEFAULT_LATENCY_BUCKETS,
            model_identity(config),
        )
        self.versions = self.folder.versions
        self.evaluator = Evaluator({key: model for key, (model, _) in models.items()}, clock, trained_times)
        self.states: dict[int, PartitionState] = {}
        self.lock = threading.Lock()
        self.lag: dict[tuple[str, int], int] = {}
        self.state_dir = Path(config.state.dir) / "scale-out"
        self._stats = MergeStats()
        self._commit_after = 0.0

    # ------------------------------------------------------------------ partitions and state

    def owned_models(self, partition: int) -> list[ModelKey]:
        """The configured models whose summaries go to ``partition``."""
        return [key for key in self.profiles if summary_partition(key[0], self.summary_partitions) == partition]

    def new_state(self, partition: int) -> PartitionState:
        profiles = {key: self.profiles[key] for key in self.owned_models(partition)}
        joiner = LabelJoiner(self.config.labels.join_ttl_seconds, self.config.labels.max_pending)
        owned = OwnedModels(profiles, self.windows, self.config.allowed_lateness_seconds, joiner)
        join = self.config.join
        pairing = Pairing(
            self.config.kafka.predictions_topic, logger_modes(self.config), join.max_pending, join.ttl_seconds
        )
        shards = ShardJoins(
            LabelJoiner(self.config.labels.join_ttl_seconds, self.config.labels.max_pending),
            self.profiles,
            self.folder.slot_seconds,
        )
        return PartitionState(partition, owned, pairing, shards)

    def checkpoint_path(self, partition: int) -> Path:
        return self.state_dir / f"{self.topic}-{partition}.parquet"

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], self._on_assign, self._on_revoke)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            for tp in partitions:
                state = self.restore(tp.partition)
                self.states[tp.partition] = state
                # From the local checkpoint's offset; else from the shared snapshot its pointer
                # names (read after this poll, outside the client's callback), else from 0.
                self.consumer.seek(tp.topic, tp.partition, state.next_offset)
                if state.next_offset == 0 and self.snapshots is not None:
                    self._pending.add(tp.partition)
                log.info(
                    "summaries[%d]: owning %d model version(s), from offset %d%s",
                    tp.partition,
                    len(state.owned.stores),
                    state.next_offset,
                    " or its shared snapshot" if tp.partition in self._pending else "",
                )

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            for tp in partitions:
                state = self.states.pop(tp.partition, None)
                if state is not None and state.dirty and self._send_reports(state):
                    self._save(state)

    def _profiles_of(self, state: PartitionState) -> dict[str, float]:
        return {f"{m}\x1f{v}": self.profiles[(m, v)].metadata.created_at for m, v in state.owned.stores}

    def restore(self, partition: int) -> PartitionState:
        """The partition's local checkpoint if it is usable, else a fresh state (offset 0)."""
        path = self.checkpoint_path(partition)
        if not path.exists():
            return self.new_state(partition)
        try:
            restored = self._state_from(partition, path.read_bytes(), str(path))
        except Exception as error:  # noqa: BLE001 - a bad local copy only costs a replay
            log.warning("%s: unreadable (%s); replaying the partition instead", path, error)
            return self.new_state(partition)
        return restored or self.new_state(partition)

    def _state_from(self, partition: int, data: bytes, source: str) -> PartitionState | None:
        """A state from checkpoint bytes (a local file or a shared snapshot); None when it was
        written for other models, profiles or partitions."""
        state = self.new_state(partition)
        checkpoint = decode_checkpoint(data, state.owned.stores, source)
        if (
            checkpoint.extra.get("profiles") != self._profiles_of(state)
            or checkpoint.extra.get("summary_partitions") != self.summary_partitions
        ):
            log.info("%s was written for other models, profiles or partitions; not used", source)
            return None
        state.import_extra(checkpoint.extra)
        state.next_offset = checkpoint.offsets.get((self.topic, partition), 0)
        return state

    def _checkpoint_bytes(self, state: PartitionState) -> bytes:
        state.owned.fold_joined()
        extra = state.export_extra()
        extra["profiles"] = self._profiles_of(state)
        extra["summary_partitions"] = self.summary_partitions
        offsets = {(self.topic, state.partition): state.next_offset}
        return encode_checkpoint(state.owned.stores, Checkpoint(offsets, extra))

    def _save(self, state: PartitionState) -> None:
        save_bytes(self.checkpoint_path(state.partition), self._checkpoint_bytes(state))
        state.dirty = False

    def checkpoint(self, commit: bool = True) -> None:
        """Write every changed partition's state; publish the shared snapshots that are due;
        commit the merge group's offsets for lag tools."""
        with self.lock:
            # A state is saved only once it has sent its join shards' reports (the offsets it covers
            # will not be merged again, so neither would those reports be made again).
            for state in self.states.values():
                if state.dirty and state.restoring is None and self._send_reports(state):
                    self._save(state)
            offsets = {
                (self.topic, p): s.next_offset
                for p, s in self.states.items()
                if s.restoring is None and not s.shards.unsent
            }
        self.evaluator.checkpoint_at = self.clock()
        self._flush_dead_letters()
        if commit:
            self._publish_snapshots()
        if commit and offsets and self.clock() >= self._commit_after:
            try:
                self.consumer.commit(offsets)
            except Exception as error:  # noqa: BLE001 - the log and the checkpoints are the truth
                self._commit_after = self.clock() + COMMIT_BACKOFF_SECONDS
                log.info("merge-group commit failed (it only serves lag tools): %s", error)

    # ------------------------------------------------------------------ shared snapshots

    def _publish_snapshots(self) -> None:
        """Publish each owned partition's state into the partition itself, then point at it.

        The pointer (the offset the state covers, in the member-less snapshot group) moves only
        once every chunk is acknowledged, so a new owner never finds half a snapshot."""
        if self.snapshots is None or self._dead_letters is None:
            return
        if self.config.kafka.summaries_format < wire.KEYED_FORMAT:
            # A replica of an older build may still own these partitions: before format 2 it
            # knows no snapshots, before 3 its join buffers hold request ids, not keys.
            return
        now = self.clock()
        with self.lock:
            due = [
                (state.partition, state.next_offset, self._checkpoint_bytes(state))
                for state in self.states.values()
                if state.restoring is None
                and not state.shards.unsent
                and state.next_offset not in (0, state.snapshot_covers)
                and now - state.snapshot_at >= self.config.kafka.snapshot_interval_seconds
            ]
        for partition, covers, data in due:
            try:
                for headers, value in wire.SnapshotPart.messages(uuid.uuid4().hex, covers, data):
                    self._dead_letters.send(
                        self.topic, value, key=wire.SNAPSHOT_KEY, headers=headers, partition=partition
                    )
                self._dead_letters.flush()
                self.snapshots.commit({(self.topic, partition): covers})
            except KafkaIOError as error:
                log.warning("summaries[%d]: state snapshot not published (next time): %s", partition, error)
                continue
            with self.lock:
                state = self.states.get(partition)
                if state is not None:
                    state.snapshot_covers, state.snapshot_at = covers, now
            log.info(
                "summaries[%d]: state snapshot covering offset %d published (%d bytes)", partition, covers, len(data)
            )

    def _read_pointers(self, messages: list[Message]) -> list[Message]:
        """Look up the snapshot pointers of newly owned partitions; a partition with one is sought
        there and searched for its snapshot (its polled messages are not merged)."""
        partitions = sorted(self._pending)
        assert self.snapshots is not None
        try:
            pointers = self.snapshots.committed([(self.topic, p) for p in partitions])
        except KafkaIOError as error:
            log.warning("cannot read the snapshot pointers yet: %s", error)
            held = set(partitions)
            for partition in partitions:  # read again once the pointers can be read
                first = min((m.offset for m in messages if m.partition == partition), default=None)
                if first is not None:
                    self.consumer.seek(self.topic, partition, first)
            return [m for m in messages if m.partition not in held]
        self._pending.clear()
        held = set()
        for partition in partitions:
            covers = pointers.get(TopicPartition(self.topic, partition))
            state = self.states.get(partition)
            if state is None or not covers:
                continue  # no snapshot yet: the whole partition is replayed
            state.restoring = SnapshotRestore(covers, seen=covers)
            self.consumer.seek(self.topic, partition, covers)
            held.add(partition)
            log.info("summaries[%d]: restoring the shared snapshot covering offset %d", partition, covers)
        return [m for m in messages if m.partition not in held]

    def _search(self, state: PartitionState, message: Message) -> bool:
        """Offer one message to a state being restored; True once the snapshot was installed."""
        restoring = state.restoring
        assert restoring is not None
        restoring.seen = message.next_offset
        try:
            part = wire.SnapshotPart.of(message)
        except wire.WireError:
            return False
        if part is None or part.covers != restoring.covers:
            return False
        chunks = restoring.chunks.setdefault(part.snapshot_id, {})
        chunks[part.part] = part.data
        if len(chunks) < part.parts:
            return False
        data = b"".join(chunks[i] for i in range(part.parts))
        try:
            restored = self._state_from(state.partition, data, f"summaries[{state.partition}] snapshot")
        except Exception as error:  # noqa: BLE001 - an unusable snapshot only costs a replay
            log.warning("summaries[%d]: snapshot unreadable (%s)", state.partition, error)
            restored = None
        if restored is None:
            self._replay_from_start(state.partition)
            return True
        restored.snapshot_covers, restored.snapshot_at = restoring.covers, self.clock()
        self.states[state.partition] = restored
        self.consumer.seek(self.topic, state.partition, restored.next_offset)
        return True

    def _replay_from_start(self, partition: int) -> None:
        log.warning("summaries[%d]: no usable shared snapshot; replaying the partition from its start", partition)
        self.states[partition] = self.new_state(partition)
        self.consumer.seek(self.topic, partition, 0)

    # ------------------------------------------------------------------ merging

    def poll_once(self) -> int:
        kafka = self.config.kafka
        messages = self.consumer.poll(kafka.poll_timeout_seconds, kafka.max_poll_records)
        if self._pending:
            messages = self._read_pointers(messages)
        if messages:
            with self.lock:
                sought: set[int] = set()  # partitions sought elsewhere mid-batch: the rest comes again
                for message in messages:
                    state = self.states.get(message.partition)
                    if state is None or message.topic != self.topic or message.partition in sought:
                        continue
                    if state.restoring is not None:
                        if self._search(state, message):
                            sought.add(message.partition)
                        continue
                    if message.offset < state.next_offset:
                        continue
                    self.merge(state, message)
                    self.after_merge(state, message.offset)
                    state.next_offset = message.next_offset
                    state.dirty = True
                for state in self.states.values():
                    self._send_reports(state)
        self._update_lag()
        return len(messages)

    def after_merge(self, state: PartitionState, offset: int) -> None:
        """What merging the message at ``offset`` owes other partitions, queued (join shards)."""
        self._route_paired(state, offset)
        state.shards.reports(offset, state.watermark)

    def _send_reports(self, state: PartitionState) -> bool:
        """Send what the partition's join shards owe their models' owners, one message per owner's
        partition (the caller holds the lock); whether nothing is left to send. What fails stays,
        to be sent again."""
        outbox, forward = state.shards.outbox, state.shards.forward
        if not (outbox or forward):
            return True
        assert self._dead_letters is not None  # join shards need the producer (checked at start)
        by_owner: dict[int, list[wire.ShardReport]] = {}
        for report in outbox:
            by_owner.setdefault(summary_partition(report.partial.model, self.summary_partitions), []).append(report)
        try:
            for item in forward:
                self._send_forward(state, item)
            for owner, reports in sorted(by_owner.items()):
                for at in range(0, len(reports), wire.MAX_REPORTS_PER_MESSAGE):
                    batch = reports[at : at + wire.MAX_REPORTS_PER_MESSAGE]
                    summary = wire.SummaryRange(
                        wire.JOINED_KIND,
                        f"{wire.JOINED_KIND}:{state.partition}",
                        self.topic,
                        state.partition,
                        batch[0].offset,
                        batch[-1].offset + 1,
                        batch[-1].emitted_at,
                    )
                    self._dead_letters.send(
                        self.topic,
                        wire.encode_reports(batch, self._profile),
                        key=summary.key.encode(),
                        headers=summary.headers(),
                        partition=owner,
                    )
            self._dead_letters.flush()
        except KafkaIOError as error:
            log.warning("summaries[%d]: join shard reports not sent (again later): %s", state.partition, error)
            return False
        outbox.clear()
        forward.clear()
        return True

    def _send_forward(self, state: PartitionState, item: Forward) -> None:
        """Join rows for a shard on another partition, as the range ``[offset, offset + 1)`` of this one."""
        assert self._dead_letters is not None
        partial = item.partial
        pieces = wire.split_model_partial(partial, wire.MAX_SUMMARIES_PER_MESSAGE, wire.MAX_ROWS_PER_MESSAGE)
        for number, piece in enumerate(pieces):
            summary = wire.SummaryRange(
                wire.JOIN_KIND,
                item.key,
                self.topic,
                state.partition,
                item.offset,
                item.offset + 1,
                item.emitted_at,
                number,
            )
            self._dead_letters.send(
                self.topic,
                wire.encode_model_partial(piece, profile_for=functools.partial(self._profile, partial.model)),
                key=item.key.encode(),
                headers=summary.headers(),
                partition=summary_partition(item.key, self.summary_partitions),
            )

    def merge(self, state: PartitionState, message: Message) -> None:
        """Merge one summaries message into ``state`` (the caller holds the lock)."""
        if dict(message.headers).get(wire.KIND_HEADER) == wire.SNAPSHOT_KIND.encode():
            return  # a state snapshot (this partition's owners write them): nothing to merge
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
        if summary.kind == wire.JOINED_KIND:
            self._merge_reports(state, summary, message)
            return
        key: DedupKey = (summary.kind, summary.key, summary.source_topic, summary.source_partition)
        last_end, parts = state.merged_ends.get(key, (None, frozenset()))
        if last_end is not None and (summary.end < last_end or (summary.end == last_end and summary.part in parts)):
            state.stats.duplicates += 1
            return
        if last_end is not None and summary.start < last_end < summary.end:
            # Stage 1's fence makes this impossible; merging it would count records twice.
            state.stats.overlaps += 1
            log.error(
                "summaries[%d]: %s overlaps the range merged up to %d; refused", state.partition, summary, last_end
            )
            return
        # The parts of the newest range are kept as a set: a part lost in a failed produce
        # comes again, after later parts, when the whole range is published again.
        parts = parts | {summary.part} if summary.end == last_end else frozenset({summary.part})
        state.merged_ends[key] = (summary.end, parts)
        self._advance(state, summary.emitted_at)
        try:
            model = summary.key
            if summary.kind == wire.JOIN_KIND:
                try:
                    model = join_shard_of(summary.key)[0]
                except ValueError as error:
                    raise wire.WireError("invalid_summary", str(error)) from None
            self._check_route(state, summary.key)
            if summary.kind == wire.PIPELINE_KIND:
                state.owned.merge_pipeline(wire.decode_pipeline_partial(message.value))
            elif summary.kind == wire.JOIN_KIND:
                self._merge_join(state, summary, model, message.value)
            else:
                self._merge_model(state, summary, model, message.value)
        except wire.WireError as error:
            self._refuse(state, error, message)
            return
        state.stats.merged += 1

    def _advance(self, state: PartitionState, emitted_at: float) -> None:
        """The join's clock moves first: what waited past its TTL by this publication is unmatched."""
        state.watermark = max(state.watermark, emitted_at)
        state.owned.joiner.expire(state.watermark)
        expired = state.pairing.expire(state.watermark)
        if expired:
            self._fold_paired(state, expired, emitted_at)
        state.shards.expire(state.watermark)

    def _check_route(self, state: PartitionState, key: str) -> None:
        owner = summary_partition(key, self.summary_partitions)
        if owner != state.partition:
            raise wire.WireError("misrouted", f"{key!r} belongs on summaries partition {owner}")

    def _merge_reports(self, state: PartitionState, summary: wire.SummaryRange, message: Message) -> None:
        """A ``joined`` message: join shards' reports, each skipped or merged on its own (a report
        is the range ``[offset, offset + 1)`` of its shard's partition, under its join key: a
        replay batches them otherwise, but makes the same report for the same offset)."""
        try:
            reports = wire.decode_reports(message.value, self._profile)
            for report in reports:
                self._check_route(state, report.partial.model)
        except wire.WireError as error:
            self._refuse(state, error, message)
            return
        fresh = []
        for report in reports:
            key: DedupKey = (wire.JOINED_KIND, report.key, summary.source_topic, summary.source_partition)
            last_end, _ = state.merged_ends.get(key, (None, frozenset()))
            if last_end is not None and report.offset < last_end:
                state.stats.duplicates += 1
                continue
            state.merged_ends[key] = (report.offset + 1, frozenset({0}))
            fresh.append(report)
        if not fresh:
            return
        self._advance(state, max(report.emitted_at for report in fresh))
        # The reports of one model are added together: one merge per window bucket, not per report.
        for partial in combine_reports(fresh, self._layout):
            try:
                state.owned.merge(partial, state.watermark)
            except PartialMismatch as error:
                self._refuse(state, wire.WireError(error.reason, str(error)), message)
        state.stats.merged += 1

    def _merge_sidecar(self, state: PartitionState, message: Message) -> None:
        """One bucket of a sidecar in edge mode (:mod:`exporter.pipeline.summary_wire`), deduplicated by
        its producer's sequence and merged as a one-slot partial. It carries no event times, so the
        bucket's start stands in for its newest event (the sidecar exports its own last-prediction time)."""
        try:
            header = summary_wire.read_summary_header(message.value)
            self._check_route(state, header.model)
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
        start = header.bucket_start
        version = VersionPartial(
            profile.metadata.created_at, predictions={start: bucket}, newest={(PREDICTION_ROLE, start): float(start)}
        )
        partial = ModelPartial(header.model, header.bucket_seconds, {header.model_version: version})
        try:
            state.owned.merge(partial, state.watermark)
        except PartialMismatch as error:
            self._refuse(state, wire.WireError(error.reason, str(error)), message)
            return
        state.sequences[header.producer_id] = header.sequence
        state.stats.merged += 1

    def _refuse(self, state: PartitionState, error: wire.WireError, message: Message) -> None:
        # Not dead-lettered: the message stays in the summaries topic, and every replay would
        # write it again. Counted (a replay recounts it the same) and logged.
        state.owned.counters.rejected[(self.topic, error.reason)] += 1
        log.warning("summaries[%d] offset %d refused (%s): %s", message.partition, message.offset, error.reason, error)

    def _profile(self, model: str, version: str) -> ReferenceProfile | None:
        return self.profiles.get((model, version))

    def _layout(self, model: str, version: str) -> BucketLayout:
        return wire.bucket_layout(self.profiles[(model, version)])

    def _decode_model(self, model: str, value: bytes) -> ModelPartial:
        if model not in self.versions:
            raise wire.WireError("unknown_model", f"model {model!r} is not configured here")
        partial = wire.decode_model_partial(value, lambda version: self.profiles.get((model, version)))
        if partial.model != model:
            raise wire.WireError("invalid_summary", f"keyed {model!r} but holds {partial.model!r}")
        return partial

    @staticmethod
    def _halves(partial: ModelPartial) -> list[tuple[CarriedHalf, Side, InferenceHalf]]:
        halves = []
        for carried in partial.halves:
            try:
                side, half = carried.half()
            except (ValueError, KeyError, TypeError, IndexError) as error:
                raise wire.WireError("invalid_summary", f"unreadable request/response half: {error!r}") from None
            if half.model != partial.model:
                raise wire.WireError("invalid_summary", f"a half of {half.model!r} in a partial of {partial.model!r}")
            halves.append((carried, side, half))
        return halves

    def _merge_model(self, state: PartitionState, summary: wire.SummaryRange, model: str, value: bytes) -> None:
        partial = self._decode_model(model, value)
        halves = self._halves(partial)
        try:
            state.owned.merge(partial, summary.emitted_at)
        except PartialMismatch as error:
            raise wire.WireError(error.reason, str(error)) from None
        if halves:
            # Paired after the partial's own records, in the log's order, on the partition's clock.
            self._fold_paired(state, state.pairing.offer(halves, state.watermark), summary.emitted_at)

    def _merge_join(self, state: PartitionState, summary: wire.SummaryRange, model: str, value: bytes) -> None:
        """A join shard's rows meet the shard; its halves are paired here, in the log's order."""
        partial = self._decode_model(model, value)
        halves = self._halves(partial)
        state.shards.meet(summary.key, partial, summary.emitted_at)
        if halves:
            self._fold_paired(state, state.pairing.offer(halves, state.watermark), summary.emitted_at)

    def _fold_paired(self, state: PartitionState, decoded: dict[str, Decoded], emitted_at: float) -> None:
        """What pairing made — records and refusals: refusals counted here; records folded with
        the one fold and merged, or, with join shards, held to be folded once per message
        (:meth:`_route_paired`)."""
        if self.config.kafka.join_shards:
            state.paired.append(decoded)
            return
        for partial in self._fold_decoded(state, decoded).values():
            try:
                state.owned.merge(partial, emitted_at)
            except PartialMismatch as error:  # cannot happen for partials folded here; never stop merging
                log.error("summaries[%d]: records of paired halves not merged: %s", state.partition, error)

    def _route_paired(self, state: PartitionState, offset: int) -> None:
        """With join shards: the records paired while merging the message at ``offset``, folded as
        one, go on as that offset's own — a model partial (buckets, counters) to each model's
        owner as a report keyed :func:`~exporter.aggregator.scaleout.routing.paired_key`, and the
        join rows to their shards: met here when the shard is here, else sent as a ``join``
        message. One per key and offset, so the owner and the shards skip a replay's copies by
        offset."""
        if not state.paired:
            return
        partials: Partials = {}
        for decoded in state.paired:
            self._fold_decoded(state, decoded, partials)
        state.paired.clear()
        for model, partial in partials.items():
            rest, by_shard = split_join(partial, self.config.kafka.join_shards)
            state.shards.outbox.append(wire.ShardReport(paired_key(model), offset, state.watermark, rest))
            for shard, rows in by_shard.items():
                key = join_key(model, shard)
                if summary_partition(key, self.summary_partitions) == state.partition:
                    state.shards.meet(key, rows, state.watermark)
                else:
                    state.shards.forward.append(Forward(key, offset, state.watermark, rows))

    def _fold_decoded(
        self, state: PartitionState, decoded: dict[str, Decoded], partials: Partials | None = None
    ) -> Partials:
        """Count what pairing refused and dropped; fold its records into ``partials``."""
        partials = {} if partials is None else partials

        def reject(topic: str, items: Iterable[Rejected], rows: int | None = None) -> None:
            self._reject_paired(state, topic, items, rows)

        for topic, part in decoded.items():
            self._reject_paired(state, topic, part.rejected)
            if part.duplicates:  # copies of halves already paired, dropped by the join buffer
                state.owned.counters.duplicates[topic] += part.duplicates
            for table in part.predictions:
                self.folder.fold_predictions(partials, topic, table, reject)
        return partials

    def _reject_paired(
        self,
        state: PartitionState,
        topic: str,
        rejected: Iterable[Rejected],
        rows: int | None = None,
    ) -> None:
        # Counted in the state (a replay counts them the same). Dead letters are best effort
        # and written again by a replay of the partition.
        for item in rejected:
            state.owned.counters.rejected[(topic, item.reason.value)] += 1 if rows is None else rows
            if self.dead_letter is not None:
                try:
                    self.dead_letter.write(item)
                except KafkaIOError as error:
                    log.warning("dead letter of a %s record not written: %s", item.reason.value, error)

    def _update_lag(self) -> None:
        try:
            ends = self.consumer.high_watermarks()
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        with self.lock:
            nexts = {p: s.next_offset for p, s in self.states.items()}
            for tp, end in ends.items():
                state = self.states.get(tp.partition)
                if state is not None and state.restoring is not None and state.restoring.seen >= end:
                    self._replay_from_start(tp.partition)  # the log ends without the snapshot
        self.lag = {(tp.topic, tp.partition): max(end - nexts.get(tp.partition, end), 0) for tp, end in ends.items()}

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> Snapshot:
        snapshot = self.evaluator.evaluate(
            self.lock,
            lambda: [state.owned for state in self.states.values()],
            lambda: {**self.extra_lag(), **self.lag},
        )
        with self.lock:
            self._stats = sum((state.stats for state in self.states.values()), MergeStats())
        return snapshot

    def snapshot(self) -> Snapshot:
        return self.evaluator.snapshot()

    def latency(self) -> dict[ModelKey, HistogramState]:
        return self.evaluator.latency()

    def stats(self) -> MergeStats:
        return self._stats

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
            if self.snapshots is not None:
                self.snapshots.close()
            if self._dead_letters is not None:
                try:
                    self._dead_letters.close()
                except Exception as error:  # noqa: BLE001 - best effort at shutdown
                    log.warning("closing the dead-letter producer: %s", error)
