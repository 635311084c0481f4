"""The :class:`Consumer` and :class:`Producer` seams over kafka-python (the default client)."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence

with warnings.catch_warnings():
    # kafka-python 3.0.12 reads its protocol schemas at import through a deprecated
    # importlib API: a hundred warnings about kafka-python, none about us.
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka
    import kafka.admin
    import kafka.errors as kerrors
    from kafka.structs import OffsetAndMetadata

from exporter.kafka.types import (
    BrokerUnavailable,
    CommitFailed,
    ConsumerSettings,
    Header,
    KafkaIOError,
    Message,
    PartitionsCallback,
    ProduceFailed,
    ProducerSettings,
    TopicPartition,
    describe_failures,
)

log = logging.getLogger(__name__)

# kafka-python's commit waits for a group coordinator without end by default: with the
# broker away it would hold the caller (the aggregator's consuming loop) until it returns.
COMMIT_TIMEOUT_MS = 10_000

# Errors meaning "this member no longer owns what it tried to commit", not "Kafka is broken".
_GROUP_MOVED = (
    kerrors.CommitFailedError,
    kerrors.RebalanceInProgressError,
    kerrors.IllegalGenerationError,
    kerrors.UnknownMemberIdError,
)


def _servers(bootstrap_servers: str) -> list[str]:
    return [s.strip() for s in bootstrap_servers.split(",") if s.strip()]


def _ours(tps: Iterable[kafka.TopicPartition]) -> list[TopicPartition]:
    return sorted(TopicPartition(tp.topic, tp.partition) for tp in tps)


class _Listener(kafka.ConsumerRebalanceListener):
    def __init__(self, on_assign: PartitionsCallback | None, on_revoke: PartitionsCallback | None) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked: Iterable[kafka.TopicPartition]) -> None:
        # kafka-python revokes "nothing" before every join; confluent-kafka never does.
        partitions = _ours(revoked)
        if self._on_revoke is not None and partitions:
            self._on_revoke(partitions)

    def on_partitions_assigned(self, assigned: Iterable[kafka.TopicPartition]) -> None:
        if self._on_assign is not None:
            self._on_assign(_ours(assigned))


class KafkaPythonConsumer:
    def __init__(self, settings: ConsumerSettings) -> None:
        try:
            self._consumer = kafka.KafkaConsumer(
                bootstrap_servers=_servers(settings.bootstrap_servers),
                group_id=settings.group_id,
                client_id=settings.client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_interval_ms=settings.max_poll_interval_ms,
                bootstrap_timeout_ms=int(settings.bootstrap_timeout_s * 1000),
            )
        except (kerrors.KafkaTimeoutError, kerrors.KafkaConnectionError) as error:
            raise BrokerUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers}: {error}") from error

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        self._consumer.subscribe(list(topics), listener=_Listener(on_assign, on_revoke))

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Message]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except kerrors.KafkaError as error:
            raise KafkaIOError(f"poll failed: {error}") from error
        return [
            Message(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value or b"",
                headers=tuple((name, value or b"") for name, value in record.headers or ()),
                timestamp_ms=record.timestamp if record.timestamp is not None and record.timestamp >= 0 else None,
            )
            for records in batches.values()
            for record in records
        ]

    def seek(self, topic: str, partition: int, offset: int) -> None:
        try:
            self._consumer.seek(kafka.TopicPartition(topic, partition), offset)
        except (kerrors.KafkaError, AssertionError) as error:
            raise KafkaIOError(f"cannot seek {topic}[{partition}] to {offset}: {error}") from error

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if not offsets:
            return  # kafka-python would read an empty commit as "commit everything consumed"
        request = {
            kafka.TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in offsets.items()
        }
        try:
            self._consumer.commit(request, timeout_ms=COMMIT_TIMEOUT_MS)
        except _GROUP_MOVED as error:
            raise CommitFailed(f"commit refused, the group rebalanced: {error}") from error
        except kerrors.KafkaError as error:
            raise KafkaIOError(f"commit failed: {error}") from error

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]:
        try:
            return {
                # Bounded like commits: without a timeout kafka-python waits for the coordinator forever.
                TopicPartition(topic, partition): self._consumer.committed(
                    kafka.TopicPartition(topic, partition), timeout_ms=COMMIT_TIMEOUT_MS
                )
                for topic, partition in partitions
            }
        except kerrors.KafkaError as error:
            raise KafkaIOError(f"cannot read committed offsets: {error}") from error

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_ours(self._consumer.assignment()))

    def high_watermarks(self) -> dict[TopicPartition, int]:
        marks = {}
        for tp in self._consumer.assignment():
            mark = self._consumer.highwater(tp)
            if mark is not None:
                marks[TopicPartition(tp.topic, tp.partition)] = mark
        return marks

    def close(self) -> None:
        # Leaving the group explicitly lets the others take over now, not after a session timeout.
        self._consumer.close(autocommit=False)


class KafkaPythonProducer:
    def __init__(self, settings: ProducerSettings) -> None:
        try:
            self._producer = kafka.KafkaProducer(
                bootstrap_servers=_servers(settings.bootstrap_servers),
                client_id=settings.client_id,
                acks=settings.acks if settings.acks == "all" else int(settings.acks),
                linger_ms=settings.linger_ms,
                request_timeout_ms=settings.request_timeout_ms,
                delivery_timeout_ms=settings.delivery_timeout_ms,
                max_block_ms=settings.max_block_ms,
                enable_idempotence=settings.idempotent,
                bootstrap_timeout_ms=int(settings.bootstrap_timeout_s * 1000),
            )
        except (kerrors.KafkaTimeoutError, kerrors.KafkaConnectionError) as error:
            raise BrokerUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers}: {error}") from error
        # Errbacks run on kafka-python's sender thread; flush() reads them on the caller's.
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self._failed = 0

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
    ) -> None:
        try:
            future = self._producer.send(topic, value=value, key=key, headers=list(headers), partition=partition)
        except (kerrors.KafkaError, AssertionError) as error:
            raise ProduceFailed(f"cannot send to {topic}: {error}", [str(error)]) from error
        future.add_errback(self._record_failure, topic)

    def _record_failure(self, topic: str, error: BaseException) -> None:
        with self._lock:
            self._failed += 1
            # One failed batch calls back once per record, all with the same error.
            text = f"{topic}: {error}"
            if len(self._failures) < 10 and text not in self._failures:
                self._failures.append(text)

    def flush(self, timeout_s: float = 30.0) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except kerrors.KafkaTimeoutError as error:
            raise ProduceFailed(f"messages still undelivered after {timeout_s:g} s: {error}") from error
        with self._lock:
            failed, failures = self._failed, self._failures
            self._failed, self._failures = 0, []
        if failed:
            raise ProduceFailed(describe_failures(failed, failures), failures)

    def close(self) -> None:
        self._producer.close()


def create_topics(bootstrap_servers: str, names: Iterable[str], partitions: int, *, exist_ok: bool = False) -> None:
    """Create topics with one replica each (admin helper for the embedded broker and tests)."""
    admin = kafka.admin.KafkaAdminClient(bootstrap_servers=_servers(bootstrap_servers), client_id="model-health-admin")
    try:
        for name in names:
            try:
                admin.create_topics([kafka.admin.NewTopic(name, partitions, 1)])
            except kerrors.TopicAlreadyExistsError:
                if not exist_ok:
                    raise
    finally:
        admin.close()


def topic_partitions(bootstrap_servers: str) -> dict[str, int]:
    """Every topic the cluster knows, with its partition count."""
    consumer = kafka.KafkaConsumer(bootstrap_servers=_servers(bootstrap_servers), client_id="model-health-admin")
    try:
        return {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in consumer.topics()}
    finally:
        consumer.close()
