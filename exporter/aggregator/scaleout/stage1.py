"""Stage 1 of scale-out: fold any source partition into partial summaries, re-keyed by model.

Each replica consumes whichever partitions of the predictions and labels topics the group
gives it, decodes them exactly as the single-process aggregator does (dead-lettering and
counting what it refuses), and folds every open *range* ``[start, end)`` of a partition
into per-model partials (:mod:`exporter.aggregator.scaleout.wire`). Every flush publishes, per
range, one message per model (keyed and partitioned by model, see
:mod:`exporter.aggregator.scaleout.routing`) and one pipeline message with the range's consumed and
refused counts.

Progress lives in the output, not in the consumer's memory. A flush of partition ``p``
over ``[a, b)`` runs:

1. record the *intent* ``b`` as ``p``'s offset in the member-less progress group
   (:func:`~exporter.aggregator.scaleout.routing.progress_group`) — Kafka's commit metadata would be
   the natural place, but tansu drops it;
2. commit ``a`` to the group — the fence: it fails once this replica no longer owns ``p`` (the
   coordinator refuses a stale generation's commits), and then nothing is produced;
3. produce the range's messages and wait for every acknowledgement;
4. commit ``b`` to the group.

A replica that takes ``p`` over (after a crash anywhere in 1–4, or a rebalance) reads both
offsets: progress ahead of the group's commit means a flush was in flight, so it re-reads
exactly ``[a, b)`` and publishes it again as the same range — the log is immutable, so the
content is the same — before going on. Stage 2 keeps, per model and source partition, the
end of the last range it merged, and skips a range that ends at or before it. Every source
record is therefore merged exactly once, whichever replica folded it and however often one
died on the way.

**Fencing.** The intent is written *before* the ownership check, so a replica that lost ``p``
cannot publish into the next owner's state: either its check fails (it lost ``p`` before
step 2) and it produces nothing, or its check passed — then the rebalance that moved ``p``
came later, the new owner reads the intent already written, and publishes exactly the same
range, of which stage 2 merges one copy and counts the other as a duplicate. A range that
overlaps one already merged (it cannot come from this protocol) is refused and counted
(``model_health_summaries_overlaps_total``), never merged twice.

A flush whose produce fails is rewound the same way (seek back to ``a``, re-read up to ``b``).
For the content to be the same, decoding must not depend on when it runs: the decoders'
"now" is the broker time of the range's first record, and a model partial too big for one
message is split the same way every time (:func:`~exporter.aggregator.scaleout.wire.split_model_partial`).

Unpublished work is dropped at revoke. kafka-python 3 keeps the fetch position of a
partition that stays assigned across a rebalance, so such a partition is sought back to
where its dropped work began; a partition new to this replica starts at the group's commit.

With ``kafka.join_shards`` set, a model partial's label-join rows leave it for one ``join``
message per shard their request keys fall in (:func:`~exporter.aggregator.scaleout.join_shards.split_join`),
published in the same flush, keyed and routed by the shard's join key.

KServe request/response CloudEvents and Seldon inputs/outputs messages are *not* paired
here: on an unkeyed topic the two halves of one inference sit on partitions different
replicas hold. Each half is read as far as its model (:mod:`exporter.aggregator.scaleout.halves`);
what cannot be read, or names a model that is not configured, is refused here with the
reasons single mode gives; the rest travels unjoined — raw payload and headers included —
in its model's partial of the range, and the model's owner pairs it in stage 2. So stage 1
keeps no state across flushes at all (the decoders' join buffers stay empty), and nothing
here is checkpointed to disk.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from detectors.profile import ReferenceProfile
from exporter.aggregator.inputs import Models, input_topics, model_identity
from exporter.aggregator.scaleout import wire
from exporter.aggregator.scaleout.halves import read_halves
from exporter.aggregator.scaleout.join_shards import split_join
from exporter.aggregator.scaleout.routing import join_key, pipeline_key, summary_partition
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig
from exporter.decoders.joiner import Side
from exporter.decoders.sink import DecodeSink
from exporter.decoders.wire_formats import WireFormat
from exporter.kafka import CommitFailed, Consumer, DeadLetter, KafkaIOError, Message, Producer, TopicPartition
from exporter.pipeline.decode import Decode
from exporter.pipeline.dedup import RecentRequestIds
from exporter.pipeline.fold import Folder, Partials
from exporter.pipeline.partial import CarriedHalf, ModelPartial
from exporter.pipeline.windows import slot_seconds
from exporter.records import Reason, Rejected

log = logging.getLogger(__name__)

__all__ = ["PartialStage"]


@dataclass
class _Range:
    """An open range of one source partition: everything folded since its last flush."""

    start: int
    end: int
    opened_at: float
    now: float
    rows: int = 0
    models: Partials = field(default_factory=dict)
    pipeline: wire.PipelinePartial = field(default_factory=wire.PipelinePartial)
    # Request ids seen in this range: a range read again after a crash starts from nothing too,
    # so it folds the same (docs/producers.md says what that catches).
    dedup: RecentRequestIds | None = None


@dataclass(frozen=True)
class _Outgoing:
    key: str
    partition: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def config_dedup(config: AggregatorConfig) -> RecentRequestIds | None:
    """A fresh set of recent request ids as ``dedup`` configures it (None when it is off)."""
    if not config.dedup.max_ids:
        return None
    return RecentRequestIds(config.dedup.max_ids, config.dedup.ttl_seconds)


class PartialStage:
    """Stage 1: source partitions → partial summaries on the summaries topic."""

    def __init__(
        self,
        config: AggregatorConfig,
        models: Models,
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
        # What this replica writes; every replica reads every format (a rolling upgrade's knob).
        self.format_version = config.kafka.summaries_format
        self.clock = clock
        self.monotonic = monotonic
        self.profiles = {key: profile for key, (_, profile) in models.items()}
        self.slot_seconds = slot_seconds(w.bucket_seconds for w in config.windows)
        self.folder = Folder(self.profiles, self.slot_seconds, DEFAULT_LATENCY_BUCKETS, model_identity(config))
        self.versions = self.folder.versions
        # Halves are read here only in a format the decoder would take (``kafka.format``).
        self.expected: WireFormat | None = getattr(decode, "expected", None)
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
                log.info(
                    "%s[%d]: flush of [%s, %d) was in flight; publishing that range again",
                    tp.topic,
                    tp.partition,
                    committed,
                    intent,
                )
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
                        # Nothing was produced (steps 1–2): tried again when the records
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
            dedup = config_dedup(self.config)
            current = _Range(
                start=first.offset if start is None else start,
                end=first.offset,
                opened_at=self.monotonic(),
                now=now,
                dedup=dedup,
            )
            self._open[tp] = current
        return current

    def _fold(self, tp: TopicPartition, messages: list[Message]) -> None:
        current = self._range(tp, messages[0])
        topic = tp.topic
        rest = self._halves(current, messages)
        if rest:
            decoded, formats = self.decode(rest, current.now)
            for fmt in formats:
                current.pipeline.consumed[(topic, fmt)] = current.pipeline.consumed.get((topic, fmt), 0) + 1
            self._reject(current, topic, decoded.rejected)
            reject = functools.partial(self._reject, current)
            for table in decoded.predictions:
                current.rows += self.folder.fold_predictions(current.models, topic, table, reject, current.dedup)
            if current.dedup is not None:
                for source, dropped in current.dedup.take_dropped().items():
                    current.pipeline.duplicates[source] = current.pipeline.duplicates.get(source, 0) + dropped
            for table in decoded.labels:
                current.rows += self.folder.fold_labels(current.models, topic, table, reject)
        current.end = messages[-1].next_offset
        self._next[tp] = current.end

    def _reject(self, current: _Range, topic: str, rejected: Iterable[Rejected], rows: int | None = None) -> None:
        for item in rejected:
            key = (topic, item.reason.value)
            current.pipeline.rejected[key] = current.pipeline.rejected.get(key, 0) + (1 if rows is None else rows)
            self.dead_letter.write(item)

    def _halves(self, current: _Range, messages: list[Message]) -> list[Message]:
        """Take the KServe and Seldon halves out of ``messages`` (returns the others).

        A half is not joined here: its partner may be on a partition another replica
        holds, and stage 1 keeps nothing across a crash. Each half that names a configured
        model travels, unjoined, in that model's partial to its owner, who pairs it
        (:mod:`exporter.aggregator.scaleout.halves`). What cannot be read, or names no configured
        model, is refused here — with the reasons single mode gives — and counted.
        """
        rest: list[Message] = []
        for message in messages:
            sink = DecodeSink()
            read = read_halves(sink, message, self.config.kafka.labels_topic, self.expected)
            if read is None:
                rest.append(message)
                continue
            wire_format, halves = read
            self._reject(current, message.topic, sink.rejected)
            key = (message.topic, wire_format)
            current.pipeline.consumed[key] = current.pipeline.consumed.get(key, 0) + 1
            for side, half in halves:
                if half.model not in self.folder.versions:
                    rows = len(half.features if half.features is not None else half.predictions or ())
                    detail = (
                        f"{half.model_namespace}/{half.model}: a {side.value} half of a model that is not configured"
                    )
                    self._reject(
                        current,
                        message.topic,
                        [Rejected(Reason.UNKNOWN_MODEL, detail, half.payload, half.headers)],
                        rows if side is Side.REQUEST else 0,
                    )
                    continue
                current.models.setdefault(half.model, ModelPartial(half.model, self.slot_seconds)).halves.append(
                    CarriedHalf.of(wire_format, message.topic, side, half)
                )
                current.rows += 1
        return rest

    def _update_lag(self) -> None:
        try:
            ends = self.consumer.high_watermarks()
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        self.lag = {(tp.topic, tp.partition): max(end - self._next.get(tp, end), 0) for tp, end in ends.items()}

    # ------------------------------------------------------------------ publishing

    def _due(self) -> bool:
        if not self._open:
            return False
        if any(r.rows >= self.config.kafka.partial_flush_records for r in self._open.values()):
            return True
        return self.monotonic() - self._last_flush >= self.config.kafka.partial_flush_seconds

    def flush(self) -> bool:
        """Publish every open range (steps 1–4 of the module docstring); False if it failed.

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
            log.warning(
                "publishing partial summaries failed; trying again in %gs: %s",
                self.config.kafka.partial_flush_seconds,
                error,
            )
            return False
        return True

    def _publish(self, partitions: list[TopicPartition]) -> None:
        ranges = {tp: self._open[tp] for tp in partitions if tp in self._open}
        if not ranges:
            return
        # 1: the intent. If it fails nothing was written; the range stays open and grows.
        self.progress.commit({tp: r.end for tp, r in ranges.items()})
        # 2: still ours? The fence: after the intent, so a replica that lost a partition either
        # learns it here, before producing, or lost it later, to an owner that reads this intent.
        self.consumer.commit({tp: r.start for tp, r in ranges.items()})
        emitted_at = self.clock()
        try:
            # 3: the output, acknowledged.
            for tp, current in ranges.items():
                for out in self._messages(tp, current, emitted_at):
                    self.producer.send(
                        self.config.kafka.summaries_topic,
                        out.value,
                        key=out.key.encode(),
                        headers=out.headers,
                        partition=out.partition,
                    )
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
        # 4: done. If this commit fails, the next owner re-publishes ranges stage 2 skips.
        try:
            self.consumer.commit({tp: r.end for tp, r in ranges.items()})
        except CommitFailed as error:
            log.info("commit after publishing refused (rebalance): %s", error)
        except KafkaIOError as error:
            log.warning("commit after publishing failed; the next flush commits it: %s", error)

    def _messages(self, tp: TopicPartition, current: _Range, emitted_at: float) -> list[_Outgoing]:
        out = []
        shards = self.config.kafka.join_shards
        for model, whole in current.models.items():
            # With join shards, the join's rows go to the shards their request keys name.
            rest, by_shard = split_join(whole, shards) if shards else (whole, {})
            keyed = [(wire.MODEL_KIND, model, rest)]
            keyed += [(wire.JOIN_KIND, join_key(model, shard), rows) for shard, rows in by_shard.items()]
            for kind, key, partial in keyed:
                out += self._partial_messages(tp, current, emitted_at, kind, key, partial)
        key = pipeline_key(tp.topic, tp.partition)
        summary = wire.SummaryRange(
            wire.PIPELINE_KIND,
            key,
            tp.topic,
            tp.partition,
            current.start,
            current.end,
            emitted_at,
            format=self.format_version,
        )
        out.append(
            _Outgoing(
                key,
                summary_partition(key, self.summary_partitions),
                wire.encode_pipeline_partial(current.pipeline, self.format_version),
                summary.headers(),
            )
        )
        return out

    def _partial_messages(
        self, tp: TopicPartition, current: _Range, emitted_at: float, kind: str, key: str, partial: ModelPartial
    ) -> list[_Outgoing]:
        """One model partial of the range (a ``model`` or a ``join`` one), in as many parts as it needs."""
        out = []
        partition = summary_partition(key, self.summary_partitions)
        pieces = wire.split_model_partial(partial, wire.MAX_SUMMARIES_PER_MESSAGE, wire.MAX_ROWS_PER_MESSAGE)
        for number, piece in enumerate(pieces):
            summary = wire.SummaryRange(
                kind, key, tp.topic, tp.partition, current.start, current.end, emitted_at, number, self.format_version
            )
            value = wire.encode_model_partial(
                piece,
                f"{tp.topic}:{tp.partition}",
                current.end,
                format_version=self.format_version,
                profile_for=functools.partial(self._profile, partial.model),
            )
            out.append(_Outgoing(key, partition, value, summary.headers()))
        return out

    def _profile(self, model: str, version: str) -> ReferenceProfile | None:
        return self.profiles.get((model, version))

    def close(self) -> None:
        """Publish what is open (a clean stop leaves nothing to re-read) and leave the group."""
        try:
            if self._open and not self.flush():
                log.warning("final publish failed; the next owner re-reads those records")
        finally:
            self.consumer.close()
            self.progress.close()
