"""The aggregator: Kafka prediction logs → windows → drift → an immutable snapshot.

One consuming thread runs the pipeline ``poll → decode → route by model → fold`` and
checkpoints state with the offsets it covers; a scheduler thread evaluates the windows
into a new :class:`~exporter.pipeline.snapshot.Snapshot`; the HTTP thread renders whatever
snapshot is current. State is touched under one lock; scrapes never take it.

Exactly-once effect: on (re)assignment a partition is sought to the offset stored in the
last checkpoint, not to the group's committed offset, so records folded into the
checkpointed state are never folded again and the rest are folded once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.profile import ReferenceProfile
from exporter.aggregator.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from exporter.config import DEFAULT_LATENCY_BUCKETS, AggregatorConfig, ModelConfig
from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.fixed_format import fixed_format
from exporter.kafka import Consumer, DeadLetter, Message, Producer, TopicPartition
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.label_join import LabelJoiner
from exporter.pipeline.model_versions import ModelKey, resolve_model, versions_by_model
from exporter.pipeline.snapshot import EVALUATION_BUCKETS, HistogramState, PipelineState, Snapshot
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.profiles import load_profile
from exporter.records import Decoded, Reason, Rejected

log = logging.getLogger(__name__)

# One topic's messages of a poll, now → what they decoded to, and each message's format label.
Decode = Callable[[list[Message], float], tuple[Decoded, list[str]]]
CHECKPOINT_FILE = "aggregator-checkpoint.parquet"
COMMIT_BACKOFF_SECONDS = 10.0


@dataclass
class Counters:
    """Monotonic totals; checkpointed with the state so they stay exact across restarts."""

    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    predictions: Counter[ModelKey] = field(default_factory=Counter)
    errors: Counter[ModelKey] = field(default_factory=Counter)
    latency: dict[ModelKey, HistogramState] = field(default_factory=dict)

    def export(self) -> dict[str, list[list[object]]]:
        return {
            "consumed": [[*k, v] for k, v in self.consumed.items()],
            "rejected": [[*k, v] for k, v in self.rejected.items()],
            "late": [[k, v] for k, v in self.late.items()],
            "predictions": [[*k, v] for k, v in self.predictions.items()],
            "errors": [[*k, v] for k, v in self.errors.items()],
            "latency": [[*k, list(h.bounds), list(h.counts), h.total] for k, h in self.latency.items()],
        }

    @classmethod
    def restore(cls, data: dict[str, list[list[object]]]) -> Counters:
        out = cls()
        out.consumed.update({(str(a), str(b)): int(v) for a, b, v in data.get("consumed", [])})  # type: ignore[call-overload]
        out.rejected.update({(str(a), str(b)): int(v) for a, b, v in data.get("rejected", [])})  # type: ignore[call-overload]
        out.late.update({str(a): int(v) for a, v in data.get("late", [])})  # type: ignore[call-overload]
        out.predictions.update({(str(a), str(b)): int(v) for a, b, v in data.get("predictions", [])})  # type: ignore[call-overload]
        out.errors.update({(str(a), str(b)): int(v) for a, b, v in data.get("errors", [])})  # type: ignore[call-overload]
        for model, version, bounds, counts, total in data.get("latency", []):
            out.latency[(str(model), str(version))] = HistogramState(tuple(bounds), tuple(counts), float(total))  # type: ignore[arg-type]
        return out


class BatchDecoder:
    """The decode stage: a poll's messages through format detection (or one fixed format,
    ``kafka.format``), with join buffers (KServe request/response, Seldon inputs/outputs)
    kept between polls."""

    def __init__(self, labels_topic: str, wire_format: str = "auto") -> None:
        self.labels_topic = labels_topic
        self.expected = fixed_format(wire_format)
        self.joiners = Joiners()

    def __call__(self, messages: list[Message], now: float) -> tuple[Decoded, list[str]]:
        wire = [
            WireMessage(m.value, m.topic, m.headers, m.key, m.timestamp_ms / 1000 if m.timestamp_ms else None)
            for m in messages
        ]
        batch = decode_batch(wire, now, self.joiners, labels_topic=self.labels_topic, expected=self.expected)
        return batch.decoded, [f.value for f in batch.formats]

    # Checkpointed with the windows: a half waiting at a checkpoint came from a message
    # before the checkpoint's offsets, so after a crash only the state brings it back.
    def export_state(self) -> dict[str, list[str]]:
        return self.joiners.export_state()

    def import_state(self, state: dict[str, list[str]]) -> None:
        self.joiners.import_state(state)


def input_topics(config: AggregatorConfig) -> list[str]:
    """The topics consumed: predictions and labels, or with ``kafka.format: seldon`` each
    model's Seldon inputs and outputs topics (Seldon writes one pair per model) and labels."""
    kafka = config.kafka
    if kafka.format != "seldon":
        return [kafka.predictions_topic, kafka.labels_topic]
    seldon = {
        f"seldon.{m.namespace}.model.{m.name}.{side}": None for m in config.models for side in ("inputs", "outputs")
    }
    return [*seldon, kafka.labels_topic]


def load_models(config: AggregatorConfig) -> dict[ModelKey, tuple[ModelConfig, ReferenceProfile]]:
    """Every configured model with its profile; a missing or bad profile fails the start."""
    return {(m.name, m.version): (m, load_profile(m.reference)) for m in config.models}


class Aggregator:
    def __init__(
        self,
        config: AggregatorConfig,
        models: dict[ModelKey, tuple[ModelConfig, ReferenceProfile]],
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
        # Trained times from a registry (MLflow), where it has them; else the profile's.
        self.trained_times = trained_times or dict
        windows = [WindowSpec(w.name, w.bucket_seconds, w.buckets) for w in config.windows]
        self.models = {key: model for key, (model, _) in models.items()}
        self.stores = {
            key: ModelWindows(profile, windows, config.allowed_lateness_seconds) for key, (_, profile) in models.items()
        }
        self.versions = versions_by_model(self.stores)
        self.joiner = LabelJoiner(config.labels.join_ttl_seconds, config.labels.max_pending)
        self.counters = Counters()
        self.offsets: dict[tuple[str, int], int] = {}
        self.lag: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()
        self._snapshot = Snapshot(evaluated_at=0.0)
        self._durations = HistogramState.empty(EVALUATION_BUCKETS)
        self._checkpoint_at: float | None = None
        self._commit_after = 0.0
        self._evaluated_at: float | None = None
        self.checkpoint_path = Path(config.state.dir) / CHECKPOINT_FILE
        self.subscribed = False

    # ------------------------------------------------------------------ state

    def restore(self) -> None:
        checkpoint = load_checkpoint(self.checkpoint_path, self.stores)
        if checkpoint is None:
            return
        self.offsets = dict(checkpoint.offsets)
        self.joiner.import_state(checkpoint.extra.get("joiner", {}))
        if hasattr(self.decode, "import_state"):  # a decoder that keeps join buffers
            self.decode.import_state(checkpoint.documents)
        self.counters = Counters.restore(checkpoint.extra.get("counters", {}))
        log.info("restored checkpoint covering %d partitions", len(self.offsets))

    def checkpoint(self, commit: bool = True) -> None:
        """Write state + offsets atomically, then (optionally) commit the offsets to the group.

        Dead letters are flushed first: the checkpoint says their source records are done.
        """
        self.producer.flush()
        with self.lock:
            extra = {"joiner": self.joiner.export_state(), "counters": self.counters.export()}
            documents = self.decode.export_state() if hasattr(self.decode, "export_state") else {}
            save_checkpoint(self.checkpoint_path, self.stores, Checkpoint(dict(self.offsets), extra, documents))
            offsets = dict(self.offsets)
        self._checkpoint_at = self.clock()
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
        self.subscribed = True

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
        # A whole poll decodes at once: many one-record messages make one table per
        # model, and folding cost is paid per table, not per message.
        now = self.clock()
        decoded, formats = self.decode(messages, now)
        for fmt in formats:
            self.counters.consumed[(topic, fmt)] += 1
        self._reject(topic, decoded.rejected)
        for table in decoded.predictions:
            self._fold_predictions(topic, table, now)
        for table in decoded.labels:
            self._fold_labels(topic, table, now)
        for message in messages:
            key = (message.topic, message.partition)
            self.offsets[key] = max(self.offsets.get(key, 0), message.next_offset)

    def _reject(self, topic: str, rejected: list[Rejected], rows: int | None = None) -> None:
        """Count (``rows`` each, default 1) and dead-letter refused records."""
        for item in rejected:
            self.counters.rejected[(topic, item.reason.value)] += 1 if rows is None else rows
            self.dead_letter.write(item)

    def _fold_predictions(self, topic: str, table: pa.Table, now: float) -> None:
        single = _single_group(table)
        if single is not None:
            keys = [single]
        else:
            groups = table.group_by(["model", "model_version"], use_threads=False).aggregate([])
            keys = list(zip(groups.column("model").to_pylist(), groups.column("model_version").to_pylist()))
        for model, version in keys:
            if len(keys) == 1 and model is not None:
                part = table  # one group (the usual case) is the whole table: no copy
            else:
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
                self._reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, _ipc_bytes(part))], part.num_rows)
                continue
            outcome = self.stores[key].fold_predictions(part)
            self.counters.late[key[0]] += outcome.late
            for problem in outcome.problems:
                rows = part.take(pa.array(problem.rows))
                detail = f"{problem.detail} ({problem.rows.size} rows)"
                self._reject(topic, [Rejected(problem.reason, detail, _ipc_bytes(rows))], int(problem.rows.size))
            self.counters.predictions[key] += outcome.accepted
            self._serving(key, part)
            if self.stores[key].profile.metadata.task is not None:
                self._join_predictions(key, part, now)

    def _serving(self, key: ModelKey, part: pa.Table) -> None:
        # A status that is present and not "ok" is an error (nulls compare to null: not counted).
        self.counters.errors[key] += int(pc.sum(pc.not_equal(part.column("status"), "ok")).as_py() or 0)
        latency = part.column("latency_ms").drop_null().to_numpy(zero_copy_only=False) / 1000.0
        if latency.size:
            state = self.counters.latency.get(key) or HistogramState.empty(DEFAULT_LATENCY_BUCKETS)
            below = np.searchsorted(np.sort(latency), np.asarray(state.bounds), side="right")
            counts = tuple(int(c) + int(b) for c, b in zip(state.counts, [*below.tolist(), latency.size]))
            self.counters.latency[key] = HistogramState(state.bounds, counts, state.total + float(latency.sum()))

    def _join_predictions(self, key: ModelKey, part: pa.Table, now: float) -> None:
        joined = self.joiner.add_predictions(
            key[0],
            key[1],
            part.column("request_id"),
            part.column("timestamp"),
            part.column("prediction_score"),
            part.column("prediction_class"),
            now,
        )
        for joined_key, pairs in joined.items():
            self.stores[joined_key].fold_joined(pairs)

    def _fold_labels(self, topic: str, table: pa.Table, now: float) -> None:
        known = [m for m in table.column("model").unique().to_pylist() if m in self.versions]
        is_known = pc.is_in(table.column("model"), pa.array(known, pa.string()))
        strays = table.filter(pc.invert(is_known))
        if strays.num_rows:
            detail = f"{strays.num_rows} labels for models that are not configured"
            self._reject(topic, [Rejected(Reason.UNKNOWN_MODEL, detail, _ipc_bytes(strays))], strays.num_rows)
        for model in known:
            part = table.filter(pc.equal(table.column("model"), model))
            for version in self.versions[model]:
                self.stores[(model, version)].fold_labels(part)
        for joined_key, pairs in self.joiner.add_labels(table.filter(is_known), now).items():
            self.stores[joined_key].fold_joined(pairs)

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
        started = time.perf_counter()
        now = self.clock()
        trained = self.trained_times()
        with self.lock:
            self.joiner.expire(now)
            models = []
            for key, store in self.stores.items():
                store.expire(now)
                config = self.models[key]
                identity = ModelIdentity(key[0], key[1], config.namespace or "")
                model = evaluate_model(identity, store, config.thresholds.rule, now)
                if key in trained:
                    model = replace(model, trained_at=trained[key])
                models.append(model)
            counts = self.joiner.counts
            pending = self.joiner.pending_counts()
            pipeline = PipelineState(
                consumed=dict(self.counters.consumed),
                rejected=dict(self.counters.rejected),
                late=dict(self.counters.late),
                predictions=dict(self.counters.predictions),
                prediction_errors=dict(self.counters.errors),
                labels_joined={m: c.joined for m, c in counts.items()},
                labels_unmatched={m: c.unmatched for m, c in counts.items()},
                labels_pending={m: pending.get(m, 0) for m in self.versions},
                consumer_lag=dict(self.lag),
            )
        self._durations = self._durations.observe(time.perf_counter() - started)
        self._evaluated_at = self.clock()
        self._snapshot = Snapshot(
            evaluated_at=now,
            models=tuple(models),
            pipeline=pipeline,
            evaluation_duration=self._durations,
            checkpoint_last_success=self._checkpoint_at,
            evaluation_last_success=self._evaluated_at,
        )
        return self._snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def latency(self) -> dict[ModelKey, HistogramState]:
        return dict(self.counters.latency)

    def evaluate_safely(self) -> None:
        try:
            self.evaluate()
        except Exception:  # noqa: BLE001 - a failed pass must not stop the schedule
            log.exception("evaluation failed; the previous snapshot stays")


def _single_group(table: pa.Table) -> tuple[str, str | None] | None:
    """``(model, version)`` when every row has the same model and the same version (or
    none), else None — a min/max per column instead of a hash group-by (≈1 ms a poll)."""
    model, version = table.column("model"), table.column("model_version")
    if table.num_rows == 0 or model.null_count:
        return None
    bounds = pc.min_max(model)
    if bounds["min"] != bounds["max"]:
        return None
    if version.null_count == len(version):
        return bounds["min"].as_py(), None
    if version.null_count:
        return None
    version_bounds = pc.min_max(version)
    if version_bounds["min"] != version_bounds["max"]:
        return None
    return bounds["min"].as_py(), version_bounds["min"].as_py()


def _ipc_bytes(table: pa.Table) -> bytes:
    """Refused rows as one Arrow IPC stream: the dead letter keeps them whole and typed."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
