"""The :class:`Consumer` and :class:`Producer` seams over confluent-kafka (librdkafka).

About four times kafka-python's consume rate here; optional, from the ``confluent`` extra.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import confluent_kafka as ck

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

_GROUP_MOVED = {
    ck.KafkaError.REBALANCE_IN_PROGRESS,
    ck.KafkaError.ILLEGAL_GENERATION,
    ck.KafkaError.UNKNOWN_MEMBER_ID,
    ck.KafkaError._ASSIGNMENT_LOST,
}


def _ours(tps: Iterable[ck.TopicPartition]) -> list[TopicPartition]:
    return sorted(TopicPartition(tp.topic, tp.partition) for tp in tps)


def _on_error(error: ck.KafkaError) -> None:
    # librdkafka reconnects by itself; these are worth a log line, not an exception.
    log.warning("kafka: %s", error)


def _check_reachable(client: ck.Consumer | ck.Producer, bootstrap_servers: str, timeout_s: float) -> None:
    """Fail construction the way kafka-python does: librdkafka alone would retry silently forever."""
    try:
        client.list_topics(timeout=timeout_s)
    except ck.KafkaException as error:
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap_servers}: {error}") from error


def _bytes(value: str | bytes | None) -> bytes:
    # Without deserializers librdkafka hands back bytes; the stubs allow str as well.
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def _message(message: ck.Message) -> Message:
    """A consumed, error-free record (so topic, partition and offset are set)."""
    kind, stamp = message.timestamp()
    key = message.key()
    # A consumed message's headers are a list of pairs; the stubs also allow a dict (for produce).
    raw_headers = message.headers() or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    return Message(
        topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        key=None if key is None else _bytes(key),
        value=_bytes(message.value()),
        headers=tuple((name, _bytes(value)) for name, value in pairs),
        timestamp_ms=stamp if kind != ck.TIMESTAMP_NOT_AVAILABLE and stamp >= 0 else None,
    )


class ConfluentConsumer:
    def __init__(self, settings: ConsumerSettings) -> None:
        self._consumer = ck.Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": settings.group_id,
                "client.id": settings.client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": settings.heartbeat_interval_ms,
                "max.poll.interval.ms": settings.max_poll_interval_ms,
                "error_cb": _on_error,
            },
            logger=log,
        )
        # Seeks asked for inside on_assign: librdkafka only honours starting offsets given to
        # assign(), so they are collected and handed over when the callback returns.
        self._assigning: dict[TopicPartition, int] | None = None
        try:
            _check_reachable(self._consumer, settings.bootstrap_servers, settings.bootstrap_timeout_s)
        except BrokerUnavailable:
            self._consumer.close()
            raise

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        def assigned(consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
            self._assigning = {}
            try:
                if on_assign is not None:
                    on_assign(_ours(partitions))
                starts = self._assigning
            finally:
                self._assigning = None
            for tp in partitions:
                tp.offset = starts.get(TopicPartition(tp.topic, tp.partition), ck.OFFSET_INVALID)
            consumer.assign(partitions)

        def revoked(consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
            if on_revoke is not None and partitions:
                on_revoke(_ours(partitions))

        self._consumer.subscribe(list(topics), on_assign=assigned, on_revoke=revoked)

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Message]:
        try:
            raw = self._consumer.consume(num_messages=max_records, timeout=timeout_s)
        except ck.KafkaException as error:
            raise KafkaIOError(f"poll failed: {error}") from error
        messages = []
        for message in raw:
            problem = message.error()
            if problem is not None:
                if problem.fatal():
                    raise KafkaIOError(f"consumer failed: {problem}")
                if problem.code() != ck.KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", problem)
                continue
            messages.append(_message(message))
        return messages

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if self._assigning is not None:
            self._assigning[TopicPartition(topic, partition)] = offset
            return
        try:
            self._consumer.seek(ck.TopicPartition(topic, partition, offset))
        except ck.KafkaException as error:
            raise KafkaIOError(f"cannot seek {topic}[{partition}] to {offset}: {error}") from error

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if not offsets:
            return  # librdkafka would read an empty commit as "commit the current positions"
        request = [ck.TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        try:
            results = self._consumer.commit(offsets=request, asynchronous=False)
        except ck.KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], ck.KafkaError) else None
            if error is not None and error.code() in _GROUP_MOVED:
                raise CommitFailed(f"commit refused, the group rebalanced: {error}") from exc
            raise KafkaIOError(f"commit failed: {exc}") from exc
        failed = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in results or () if tp.error is not None]
        if failed:
            raise KafkaIOError(f"commit failed for {', '.join(failed)}")

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]:
        request = [ck.TopicPartition(topic, partition) for topic, partition in partitions]
        try:
            results = self._consumer.committed(request, timeout=10.0)
        except ck.KafkaException as error:
            raise KafkaIOError(f"cannot read committed offsets: {error}") from error
        return {TopicPartition(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in results}

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_ours(self._consumer.assignment()))

    def high_watermarks(self) -> dict[TopicPartition, int]:
        marks = {}
        for tp in self._consumer.assignment():
            # cached=True reads the last fetch response instead of asking the broker; tansu's
            # answer to a fresh ListOffsets query is off by a batch (see exporter.kafka.embedded).
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                marks[TopicPartition(tp.topic, tp.partition)] = high
        return marks

    def close(self) -> None:
        self._consumer.close()


class ConfluentProducer:
    def __init__(self, settings: ProducerSettings) -> None:
        self._producer = ck.Producer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "client.id": settings.client_id,
                "acks": settings.acks,
                "linger.ms": settings.linger_ms,
                "request.timeout.ms": settings.request_timeout_ms,
                "message.timeout.ms": settings.delivery_timeout_ms,
                "enable.idempotence": settings.idempotent,
                "error_cb": _on_error,
            },
            logger=log,
        )
        self._max_block_s = settings.max_block_ms / 1000
        # Delivery reports run inside poll()/flush() on the caller's thread: no lock needed.
        self._failures: list[str] = []
        self._failed = 0
        _check_reachable(self._producer, settings.bootstrap_servers, settings.bootstrap_timeout_s)

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
    ) -> None:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        deadline = time.monotonic() + self._max_block_s
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=list(headers), on_delivery=self._delivered, **extra
                )
                break
            except BufferError as error:
                # The local queue is full: serve delivery reports until there is room.
                if time.monotonic() >= deadline:
                    raise ProduceFailed(
                        f"cannot send to {topic}: local queue full for {self._max_block_s:g} s"
                    ) from error
                self._producer.poll(0.05)
            except ck.KafkaException as error:
                raise ProduceFailed(f"cannot send to {topic}: {error}", [str(error)]) from error
        self._producer.poll(0)

    def _delivered(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        if error is not None:
            self._failed += 1
            text = f"{message.topic()}: {error}"
            if len(self._failures) < 10 and text not in self._failures:
                self._failures.append(text)

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._producer.flush(timeout_s)
        failed, failures = self._failed, self._failures
        self._failed, self._failures = 0, []
        if remaining:
            raise ProduceFailed(f"{remaining} message(s) still undelivered after {timeout_s:g} s", failures)
        if failed:
            raise ProduceFailed(describe_failures(failed, failures), failures)

    def close(self) -> None:
        # flush() raises for what is lost; close() only frees the client.
        self._producer.flush(0)
