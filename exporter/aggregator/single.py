"""Single mode: one process consumes every partition and runs the whole pipeline on each poll.

The consuming thread runs ``poll → decode → fold → merge`` (:mod:`exporter.pipeline`): a poll's
messages of one topic are decoded together, folded into per-model partials and merged at
once into the models' windows and label join — the same fold and merge scale-out splits
across its two stages. It checkpoints state with the offsets it covers; a scheduler thread
evaluates the windows into a new snapshot; the HTTP thread renders whatever snapshot is
current. State is touched under one lock; scrapes never take it.

Exactly-once effect: on (re)assignment a partition is sought to the offset stored in the
last checkpoint, not to the group's committed offset, so records folded into the
checkpointed state are never folded again and the rest are folded once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from exporter.aggregator.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from exporter.aggregator.inputs import Models, input_topics, logger_modes, model_identity
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig
from exporter.kafka import Consumer, DeadLetter, Message, Producer, TopicPartition
from exporter.pipeline.decode import Decode
from exporter.pipeline.dedup import RecentRequestIds
from exporter.pipeline.evaluation import Evaluator
from exporter.pipeline.fold import Folder, Partials
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.model_versions import ModelKey
from exporter.pipeline.owner import Counters, OwnedModels
from exporter.pipeline.snapshot import HistogramState, Snapshot
from exporter.pipeline.windows import ModelWindows, WindowSpec, slot_seconds
from exporter.records import Rejected

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "aggregator-checkpoint.parquet"
REQUEST_IDS_DOCUMENTS = "request_ids"  # the checkpoint's documents of recent request ids
COMMIT_BACKOFF_SECONDS = 10.0


class Aggregator:
    """Single mode: the consumer, its decoder, the owned models and their evaluation."""

    def __init__(
        self,
        config: AggregatorConfig,
        models: Models,
        consumer: Consumer,
        producer: Producer,
        decode: Decode,
        clock: Callable[[], float] = time.time,
        trained_times: Callable[[], Mapping[ModelKey, float]] | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.dead_letter = DeadLetter(producer, config.kafka.deadletter_topic)
        self.decode = decode
        self.clock = clock
        profiles = {key: profile for key, (_, profile) in models.items()}
        windows = [WindowSpec(w.name, w.bucket_seconds, w.buckets) for w in config.windows]
        self.folder = Folder(
            profiles,
            slot_seconds(w.bucket_seconds for w in windows),
            DEFAULT_LATENCY_BUCKETS,
            model_identity(config),
        )
        configure = getattr(decode, "configure", None)  # a decoder that pairs logged halves
        if configure is not None:
            configure(logger_modes(config), config.join.max_pending, config.join.ttl_seconds)
        # One process sees every partition: a copy on any of them is caught (docs/producers.md).
        self.dedup = RecentRequestIds(config.dedup.max_ids, config.dedup.ttl_seconds) if config.dedup.max_ids else None
        joiner = LabelJoiner(config.labels.join_ttl_seconds, config.labels.max_pending)
        self.owned = OwnedModels(profiles, windows, config.allowed_lateness_seconds, joiner)
        self.evaluator = Evaluator({key: model for key, (model, _) in models.items()}, clock, trained_times)
        self.offsets: dict[tuple[str, int], int] = {}
        self.lag: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()
        self._commit_after = 0.0
        self.checkpoint_path = Path(config.state.dir) / CHECKPOINT_FILE

    @property
    def stores(self) -> dict[ModelKey, ModelWindows]:
        return self.owned.stores

    @property
    def counters(self) -> Counters:
        return self.owned.counters

    # ------------------------------------------------------------------ state

    def restore(self) -> None:
        checkpoint = load_checkpoint(self.checkpoint_path, self.owned.stores)
        if checkpoint is None:
            return
        self.offsets = dict(checkpoint.offsets)
        self.owned.import_state(checkpoint.extra)
        if hasattr(self.decode, "import_state"):  # a decoder that keeps join buffers
            self.decode.import_state(checkpoint.documents)
        if self.dedup is not None:
            self.dedup.import_documents(checkpoint.documents.get(REQUEST_IDS_DOCUMENTS, ()))
        log.info("restored checkpoint covering %d partitions", len(self.offsets))

    def checkpoint(self, commit: bool = True) -> None:
        """Write state + offsets atomically, then (optionally) commit the offsets to the group.

        Dead letters are flushed first: the checkpoint says their source records are done.
        """
        self.producer.flush()
        with self.lock:
            self.owned.fold_joined()
            documents = self.decode.export_state() if hasattr(self.decode, "export_state") else {}
            if self.dedup is not None:
                documents = {**documents, REQUEST_IDS_DOCUMENTS: self.dedup.export_documents()}
            state = Checkpoint(dict(self.offsets), self.owned.export_state(), documents)
            save_checkpoint(self.checkpoint_path, self.owned.stores, state)
            offsets = dict(self.offsets)
        self.evaluator.checkpoint_at = self.clock()
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        owned = {key: offset for key, offset in offsets.items() if key in assigned}
        # Commits only mirror the checkpoint for lag tools. A commit attempted while the
        # group rebalances fails, and repeated sync commits then can stall the join.
        if commit and owned and self.clock() >= self._commit_after:
            try:
                self.consumer.commit(owned)
            except Exception as error:  # noqa: BLE001 - the checkpoint, not the commit, is the truth
                self._commit_after = self.clock() + COMMIT_BACKOFF_SECONDS
                log.warning("offset commit failed (state is safe in the checkpoint): %s", error)

    def close(self) -> None:
        self.consumer.close()

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            offset = self.offsets.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp.topic, tp.partition, offset)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Whoever gets these partitions next starts where this state ends. No commit here:
        # rebalance callbacks run on the client's I/O thread, which a blocking commit stalls.
        self.checkpoint(commit=False)

    # ------------------------------------------------------------------ pipeline

    def subscribe(self) -> None:
        self.consumer.subscribe(input_topics(self.config), self._on_assign, self._on_revoke)

    def poll_once(self) -> int:
        """One poll and everything it brought; returns the number of messages handled."""
        kafka = self.config.kafka
        messages = self.consumer.poll(kafka.poll_timeout_seconds, kafka.max_poll_records)
        if messages:
            with self.lock:
                by_topic: dict[str, list[Message]] = {}
                for message in messages:
                    by_topic.setdefault(message.topic, []).append(message)
                for topic, batch in by_topic.items():
                    self._handle(topic, batch)
        self._update_lag()
        return len(messages)

    def _handle(self, topic: str, messages: list[Message]) -> None:
        now = self.clock()
        decoded, formats = self.decode(messages, now)
        for fmt in formats:
            self.owned.counters.consumed[(topic, fmt)] += 1
        self._reject(topic, decoded.rejected)
        if decoded.duplicates:
            self.owned.counters.duplicates[topic] += decoded.duplicates
        partials: Partials = {}
        for table in decoded.predictions:
            self.folder.fold_predictions(partials, topic, table, self._reject, self.dedup)
        if self.dedup is not None:
            self.owned.counters.duplicates.update(self.dedup.take_dropped())
        for table in decoded.labels:
            self.folder.fold_labels(partials, topic, table, self._reject)
        for partial in partials.values():
            self.owned.merge(partial, now)
        for message in messages:
            key = (message.topic, message.partition)
            self.offsets[key] = max(self.offsets.get(key, 0), message.next_offset)

    def _reject(self, topic: str, rejected: Iterable[Rejected], rows: int | None = None) -> None:
        """Count (``rows`` each, default 1) and dead-letter refused records."""
        for item in rejected:
            self.owned.counters.rejected[(topic, item.reason.value)] += 1 if rows is None else rows
            self.dead_letter.write(item)

    def _update_lag(self) -> None:
        try:
            ends = self.consumer.high_watermarks()
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        self.lag = {
            (tp.topic, tp.partition): max(end - self.offsets.get((tp.topic, tp.partition), end), 0)
            for tp, end in ends.items()
        }

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> Snapshot:
        # The label join runs on the wall clock here: what outlived its TTL by now is unmatched.
        return self.evaluator.evaluate(
            self.lock, lambda: [self.owned], lambda: dict(self.lag), self.owned.joiner.expire
        )

    def snapshot(self) -> Snapshot:
        return self.evaluator.snapshot()

    def latency(self) -> dict[ModelKey, HistogramState]:
        return self.evaluator.latency()
