"""Stage 1 of scale-out: fold any source partition into partial summaries, re-keyed by model.

Each replica consumes whichever partitions of the predictions and labels topics the group
gives it, decodes them exactly as the single-process aggregator does (dead-lettering and
counting what it refuses), and folds every open *range* ``[start, end)`` of a partition
into per-model partials (:mod:`exporter.scaleout.wire`). Every flush publishes, per
range, one message per model (keyed and partitioned by model, see
:mod:`exporter.scaleout.routing`) and one pipeline message with the range's consumed and
refused counts.

Progress lives in the output, not in the consumer's memory. A flush of partition ``p``
over ``[a, b)`` runs:

0. commit ``a`` to the group — it fails if this replica no longer owns ``p`` (a rebalance
   moved it), so a replica that lost ``p`` stops before writing anything;
1. record the *intent* ``b`` as ``p``'s offset in the member-less progress group
   (:func:`~exporter.scaleout.routing.progress_group`) — Kafka's commit metadata would be
   the natural place, but tansu drops it;
2. produce the range's messages and wait for every acknowledgement;
3. commit ``b`` to the group.

A replica that takes ``p`` over (after a crash anywhere in 0–3, or a rebalance) reads both
offsets: progress ahead of the group's commit means a flush was in flight, so it re-reads
exactly ``[a, b)`` and publishes it again as the same range — the log is immutable, so the
content is the same — before going on. Stage 2 keeps, per model and source partition, the
end of the last range it merged, and skips a range that ends at or before it. Every source
record is therefore merged exactly once, whichever replica folded it and however often one
died on the way.

A flush whose produce fails is rewound the same way (seek back to ``a``, re-read up to ``b``).
For the content to be the same, decoding must not depend on when it runs: the decoders'
"now" is the broker time of the range's first record, and a model partial too big for one
message is split the same way every time (:func:`~exporter.scaleout.wire.split_model_partial`).

Unpublished work is dropped at revoke. kafka-python 3 keeps the fetch position of a
partition that stays assigned across a rebalance, so such a partition is sought back to
where its dropped work began; a partition new to this replica starts at the group's commit.
Stage 1 keeps no state across flushes beyond the decoders' join buffers, so nothing here is
checkpointed to disk.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.profile import ReferenceProfile
from exporter.aggregator import Decode, ModelKey, input_topics
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig, ModelConfig
from exporter.kafka import CommitFailed, Consumer, DeadLetter, KafkaIOError, Message, Producer, TopicPartition
from exporter.records import LABEL_SCHEMA, Reason, Rejected
from exporter.scaleout import wire
from exporter.scaleout.routing import pipeline_key, summary_partition
from exporter.snapshot import HistogramState
from exporter.windows import ModelWindows, WindowSpec

log = logging.getLogger(__name__)

SLOT = "slot"
_JOIN_COLUMNS = ["request_id", "timestamp", "prediction_score", "prediction_class"]


@dataclass
class _VersionFold:
    """What one range holds for one model version."""

    predictions: ModelWindows  # one window, one slot wide: a ring of slot buckets
    labels: ModelWindows
    errors: int = 0
    latency: HistogramState | None = None
    newest: dict[tuple[str, int], float] = field(default_factory=dict)  # (role, slot start) → newest event time
    join: list[pa.Table] = field(default_factory=list)


@dataclass
class _ModelFold:
    versions: dict[str, _VersionFold] = field(default_factory=dict)
    labels: list[pa.Table] = field(default_factory=list)


@dataclass
class _Range:
    """An open range of one source partition: everything folded since its last flush."""

    start: int
    end: int
    opened_at: float
    now: float
    rows: int = 0
    models: dict[str, _ModelFold] = field(default_factory=dict)
    pipeline: wire.PipelinePartial = field(default_factory=wire.PipelinePartial)


@dataclass(frozen=True)
class _Outgoing:
    key: str
    partition: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class PartialStage:
    """Stage 1: source partitions → partial summaries on the summaries topic."""

    def __init__(
        self,
        config: AggregatorConfig,
        models: dict[ModelKey, tuple[ModelConfig, ReferenceProfile]],
        consumer: Consumer,
        producer: Producer,
        progress: Consumer,
        decode: Decode,
        summary_partitions: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.progress = progress
        self.decode = decode
        self.dead_letter = DeadLetter(producer, config.kafka.deadletter_topic)
        self.summary_partitions = summary_partitions
        self.clock = clock
        self.monotonic = monotonic
        self.profiles = {key: profile for key, (_, profile) in models.items()}
        self.versions: dict[str, list[str]] = {}
        for name, version in self.profiles:
            self.versions.setdefault(name, []).append(version)
        # The finest boundary every window shares, as ModelWindows folds by.
        self.slot_seconds = functools.reduce(math.gcd, [w.bucket_seconds for w in config.windows])
        self._slot = [WindowSpec(SLOT, self.slot_seconds, 1)]
        self._open: dict[TopicPartition, _Range] = {}
        self._start: dict[TopicPartition, int | None] = {}  # where the next range starts (group commit)
        self._cut: dict[TopicPartition, int] = {}  # end of a range in flight at a crash: re-publish alone
        self._next: dict[TopicPartition, int] = {}  # next offset expected; lower ones are repeats
        self._recover: set[TopicPartition] = set()
        self._resume: dict[TopicPartition, int] = {}  # revoked: where their dropped work began
        self._last_flush = monotonic()
        self.lag: dict[tuple[str, int], int] = {}
        self.flushes = 0
        self.republished = 0

    # ------------------------------------------------------------------ group membership

    def subscribe(self) -> None:
        self.consumer.subscribe(input_topics(self.config), self._on_assign, self._on_revoke)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        # A new partition starts at the group's commit; what the commits mean is read after
        # the poll, outside the client's callback.
        log.info("stage 1: assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing")
        for tp in partitions:
            resume = self._resume.pop(tp, None)
            self._forget(tp)
            if resume is not None:
                # Kept across the rebalance: kafka-python keeps its fetch position (past the
                # work dropped at revoke), so read again from where that work began.
                self.consumer.seek(tp.topic, tp.partition, resume)
            self._recover.add(tp)
        self._resume.clear()  # not given back: whoever has them starts at the commits

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Unpublished work is dropped: whoever gets the partition reads it again.
        log.info("stage 1: revoked %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        for tp in partitions:
            current = self._open.get(tp)
            resume = current.start if current is not None else self._start.get(tp)
            self._forget(tp)
            if resume is not None:
                self._resume[tp] = resume

    def _forget(self, tp: TopicPartition) -> None:
        self._open.pop(tp, None)
        self._start.pop(tp, None)
        self._cut.pop(tp, None)
        self._next.pop(tp, None)
        self._recover.discard(tp)

    def _recover_assigned(self, messages: list[Message]) -> list[Message]:
        """Read the group's and the progress group's offsets of newly assigned partitions."""
        partitions = sorted(self._recover)
        try:
            done = self.consumer.committed(partitions)
            pending = self.progress.committed(partitions)
        except KafkaIOError as error:
            # Give their polled records back, to be read again once the offsets can be read.
            log.warning("cannot read the offsets of newly assigned partitions yet: %s", error)
            for tp in partitions:
                first = min((m.offset for m in messages if m.topic_partition == tp), default=None)
                if first is not None:
                    self.consumer.seek(tp.topic, tp.partition, first)
            held = set(partitions)
            return [m for m in messages if m.topic_partition not in held]
        for tp in partitions:
            committed, intent = done.get(tp), pending.get(tp)
            self._start[tp] = committed
            if intent is not None and (committed is None or intent > committed):
                self._cut[tp] = intent
                log.info("%s[%d]: flush of [%s, %d) was in flight; publishing that range again", tp.topic, tp.partition, committed, intent)
        self._recover.clear()
        return messages

    # ------------------------------------------------------------------ consuming

    def poll_once(self) -> int:
        """One poll: fold what it brought, publish what is due. Returns the messages handled."""
        kafka = self.config.kafka
        messages = self.consumer.poll(kafka.poll_timeout_seconds, kafka.max_poll_records)
        if self._recover:
            messages = self._recover_assigned(messages)
        by_partition: dict[TopicPartition, list[Message]] = {}
        for message in messages:
            by_partition.setdefault(message.topic_partition, []).append(message)
        assigned = self.consumer.assignment()
        for tp, batch in by_partition.items():
            if tp in assigned:
                self._take(tp, batch)
        self._update_lag()
        if self._due():
            self.flush()
        return len(messages)

    def _take(self, tp: TopicPartition, batch: list[Message]) -> None:
        expected = self._next.get(tp)
        if expected is not None:
            batch = [m for m in batch if m.offset >= expected]
        while batch:
            cut = self._cut.get(tp)
            head = batch if cut is None else [m for m in batch if m.offset < cut]
            tail = [] if cut is None else [m for m in batch if m.offset >= cut]
            if head:
                self._fold(tp, head)
            if cut is None:
                return
            current = self._open.get(tp)
            if not tail and (current is None or current.end < cut):
                return  # the range in flight is not read whole yet
            if current is not None:
                current.end = cut
                try:
                    self._publish([tp])
                except KafkaIOError as error:
                    log.warning("%s[%d]: publishing the range in flight failed: %s", tp.topic, tp.partition, error)
                    if tail and tp in self._open:
                        # Nothing was produced (steps 0–1): tried again when the records
                        # after the cut come back. (After a failed produce the whole range
                        # was already rewound, to be read again.)
                        self._rewind_to(tp, tail[0].offset)
                    return
                self.republished += 1
            else:
                self._start[tp] = cut  # nothing of it is left in the log to publish
            self._cut.pop(tp, None)
            batch = tail

    def _rewind_to(self, tp: TopicPartition, offset: int) -> None:
        self.consumer.seek(tp.topic, tp.partition, offset)
        self._next[tp] = offset

    def _range(self, tp: TopicPartition, first: Message) -> _Range:
        current = self._open.get(tp)
        if current is None:
            start = self._start.get(tp)
            # The decoders' "now" (the time of records that carry none, the join buffers'
            # clock) is the broker time of the range's first record: reading the range
            # again after a crash decodes it the same, so it splits into the same parts.
            now = first.timestamp_ms / 1000 if first.timestamp_ms is not None else self.clock()
            current = _Range(start=first.offset if start is None else start, end=first.offset, opened_at=self.monotonic(), now=now)
            self._open[tp] = current
        return current

    def _fold(self, tp: TopicPartition, messages: list[Message]) -> None:
        current = self._range(tp, messages[0])
        decoded, formats = self.decode(messages, current.now)
        topic = tp.topic
        for fmt in formats:
            current.pipeline.consumed[(topic, fmt)] = current.pipeline.consumed.get((topic, fmt), 0) + 1
        self._reject(current, topic, decoded.rejected)
        for table in decoded.predictions:
            self._fold_predictions(current, topic, table)
        for table in decoded.labels:
            self._fold_labels(current, topic, table)
        current.end = messages[-1].next_offset
        self._next[tp] = current.end

    def _reject(self, current: _Range, topic: str, rejected: Iterable[Rejected], rows: int | None = None) -> None:
        for item in rejected:
            key = (topic, item.reason.value)
            current.pipeline.rejected[key] = current.pipeline.rejected.get(key, 0) + (1 if rows is None else rows)
            self.dead_letter.write(item)

    def _resolve(self, model: str, version: str | None) -> ModelKey | None:
        versions = self.versions.get(model)
        if not versions:
            return None
        if version is None:
            return (model, versions[0]) if len(versions) == 1 else None
        return (model, version) if version in versions else None

    def _version_fold(self, current: _Range, key: ModelKey) -> _VersionFold:
        model = current.models.setdefault(key[0], _ModelFold())
        fold = model.versions.get(key[1])
        if fold is None:
            profile = self.profiles[key]
            # No lateness here: it depends on what the model's owner has seen (stage 2).
            fold = _VersionFold(ModelWindows(profile, self._slot, math.inf), ModelWindows(profile, self._slot, math.inf))
            model.versions[key[1]] = fold
        return fold

    def _fold_predictions(self, current: _Range, topic: str, table: pa.Table) -> None:
        # The same grouping, refusals and serving counters as Aggregator._fold_predictions.
        groups = table.group_by(["model", "model_version"], use_threads=False).aggregate([])
        for model, version in zip(groups.column("model").to_pylist(), groups.column("model_version").to_pylist()):
            mask = pc.equal(table.column("model"), model)
            mask = pc.and_(mask, pc.is_null(table.column("model_version")) if version is None else pc.equal(table.column("model_version"), version))
            part = table.filter(pc.fill_null(mask, False))
            key = self._resolve(model, version)
            if key is None:
                detail = f"{part.num_rows} records for model {model!r} version {version!r}, which is not configured"
                self._reject(current, topic, [Rejected(Reason.UNKNOWN_MODEL, detail, _ipc_bytes(part))], part.num_rows)
                continue
            fold = self._version_fold(current, key)
            outcome = fold.predictions.fold_predictions(part)
            accepted = np.ones(part.num_rows, dtype=bool)
            for problem in outcome.problems:
                accepted[problem.rows] = False
                rows = part.take(pa.array(problem.rows))
                detail = f"{problem.detail} ({problem.rows.size} rows)"
                self._reject(current, topic, [Rejected(problem.reason, detail, _ipc_bytes(rows))], int(problem.rows.size))
            self._newest(fold, wire.PREDICTION_ROLE, part.column("timestamp").to_numpy(zero_copy_only=False)[accepted])
            current.rows += part.num_rows
            self._serving(fold, part)
            if self.profiles[key].metadata.task is not None:
                keyed = part.filter(pc.is_valid(part.column("request_id")))
                if keyed.num_rows:
                    join = keyed.select(_JOIN_COLUMNS)
                    fold.join.append(join.add_column(0, "model_version", pa.array([key[1]] * join.num_rows, pa.string())))

    def _newest(self, fold: _VersionFold, role: str, timestamps: np.ndarray) -> None:
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

    def _serving(self, fold: _VersionFold, part: pa.Table) -> None:
        status = part.column("status").to_pylist()
        fold.errors += sum(1 for s in status if s not in (None, "ok"))
        latency = part.column("latency_ms").drop_null().to_numpy(zero_copy_only=False) / 1000.0
        if latency.size:
            state = fold.latency or HistogramState.empty(DEFAULT_LATENCY_BUCKETS)
            below = np.searchsorted(np.sort(latency), np.asarray(state.bounds), side="right")
            counts = tuple(int(c) + int(b) for c, b in zip(state.counts, [*below.tolist(), latency.size]))
            fold.latency = HistogramState(state.bounds, counts, state.total + float(latency.sum()))

    def _fold_labels(self, current: _Range, topic: str, table: pa.Table) -> None:
        # As Aggregator._fold_labels, with the join left to the model's owner.
        known = [m for m in table.column("model").unique().to_pylist() if m in self.versions]
        is_known = pc.is_in(table.column("model"), pa.array(known, pa.string()))
        strays = table.filter(pc.invert(is_known))
        if strays.num_rows:
            detail = f"{strays.num_rows} labels for models that are not configured"
            self._reject(current, topic, [Rejected(Reason.UNKNOWN_MODEL, detail, _ipc_bytes(strays))], strays.num_rows)
        for model in known:
            part = table.filter(pc.equal(table.column("model"), model))
            for version in self.versions[model]:
                fold = self._version_fold(current, (model, version))
                fold.labels.fold_labels(part)
                if self.profiles[(model, version)].label is not None:  # as fold_labels counts them
                    self._newest(fold, wire.LABEL_ROLE, part.column("timestamp").to_numpy(zero_copy_only=False))
            current.models[model].labels.append(part.select(LABEL_SCHEMA.names))
            current.rows += part.num_rows

    def _update_lag(self) -> None:
        try:
            ends = self.consumer.high_watermarks()
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        self.lag = {
            (tp.topic, tp.partition): max(end - self._next.get(tp, end), 0) for tp, end in ends.items()
        }

    # ------------------------------------------------------------------ publishing

    def _due(self) -> bool:
        if not self._open:
            return False
        if any(r.rows >= self.config.kafka.partial_flush_records for r in self._open.values()):
            return True
        return self.monotonic() - self._last_flush >= self.config.kafka.partial_flush_seconds

    def flush(self) -> bool:
        """Publish every open range (steps 0–3 of the module docstring); False if it failed.

        A failure is logged and tried again at the next flush, never raised: the caller must
        get back into ``poll`` at once, since a failed commit usually means a rebalance that
        only completes there.
        """
        self._last_flush = self.monotonic()
        try:
            self._publish([tp for tp in sorted(self._open) if tp not in self._cut])
        except CommitFailed as error:
            log.info("not publishing now, the group is rebalancing: %s", error)
            return False
        except KafkaIOError as error:
            log.warning("publishing partial summaries failed; trying again in %gs: %s", self.config.kafka.partial_flush_seconds, error)
            return False
        return True

    def _publish(self, partitions: list[TopicPartition]) -> None:
        ranges = {tp: self._open[tp] for tp in partitions if tp in self._open}
        if not ranges:
            return
        # 0: still ours? A replica that lost a partition learns it here, before writing.
        self.consumer.commit({tp: r.start for tp, r in ranges.items()})
        # 1: the intent. If it fails nothing was written; the range stays open and grows.
        self.progress.commit({tp: r.end for tp, r in ranges.items()})
        emitted_at = self.clock()
        try:
            # 2: the output, acknowledged.
            for tp, current in ranges.items():
                for out in self._messages(tp, current, emitted_at):
                    self.producer.send(self.config.kafka.summaries_topic, out.value, key=out.key.encode(), headers=out.headers, partition=out.partition)
            self.producer.flush()
        except KafkaIOError:
            # Part may be out: these exact ranges must be published again, whole.
            for tp, current in ranges.items():
                self._open.pop(tp, None)
                self._cut[tp] = current.end
                self._rewind_to(tp, current.start)
            raise
        for tp, current in ranges.items():
            del self._open[tp]
            self._start[tp] = current.end
        self.flushes += 1
        # 3: done. If this commit fails, the next owner re-publishes ranges stage 2 skips.
        try:
            self.consumer.commit({tp: r.end for tp, r in ranges.items()})
        except CommitFailed as error:
            log.info("commit after publishing refused (rebalance): %s", error)
        except KafkaIOError as error:
            log.warning("commit after publishing failed; the next flush commits it: %s", error)

    def _messages(self, tp: TopicPartition, current: _Range, emitted_at: float) -> list[_Outgoing]:
        out = []
        for model, fold in current.models.items():
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
            partition = summary_partition(model, self.summary_partitions)
            for number, piece in enumerate(wire.split_model_partial(partial, wire.MAX_SUMMARIES_PER_MESSAGE, wire.MAX_ROWS_PER_MESSAGE)):
                summary = wire.SummaryRange(wire.MODEL_KIND, model, tp.topic, tp.partition, current.start, current.end, emitted_at, number)
                value = wire.encode_model_partial(piece, f"{tp.topic}:{tp.partition}", current.end)
                out.append(_Outgoing(model, partition, value, summary.headers()))
        key = pipeline_key(tp.topic, tp.partition)
        summary = wire.SummaryRange(wire.PIPELINE_KIND, key, tp.topic, tp.partition, current.start, current.end, emitted_at)
        out.append(_Outgoing(key, summary_partition(key, self.summary_partitions), wire.encode_pipeline_partial(current.pipeline), summary.headers()))
        return out

    def close(self) -> None:
        """Publish what is open (a clean stop leaves nothing to re-read) and leave the group."""
        try:
            if self._open and not self.flush():
                log.warning("final publish failed; the next owner re-reads those records")
        finally:
            self.consumer.close()
            self.progress.close()


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()

