"""The client-agnostic shapes the rest of the exporter sees: messages, settings, seams, errors.

The aggregator and the sidecar talk to :class:`Consumer` and :class:`Producer` only, so a
test can hand them an in-memory fake and a deployment can pick kafka-python or
confluent-kafka without the callers noticing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from exporter.errors import UserError

CLIENTS = ("kafka-python", "confluent")
DEFAULT_CLIENT = "kafka-python"

Header = tuple[str, bytes]


class TopicPartition(NamedTuple):
    """A partition; being a tuple, ``("t", 0)`` works as a dict key in its place."""

    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    """One consumed record, copied out of the client's own type.

    A null value (a tombstone) arrives as ``b""``; a null header value as ``b""`` too, since
    no wire format here gives either a meaning.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...] = ()
    timestamp_ms: int | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message is fully handled."""
        return self.offset + 1


PartitionsCallback = Callable[[list[TopicPartition]], None]


@dataclass(frozen=True)
class ConsumerSettings:
    """What a group consumer needs; commits are always manual, resets always earliest.

    ``session_timeout_ms`` also sets how long joining a group takes on tansu (half of it),
    so tests pass ~2000/500 while a real cluster keeps the larger defaults.
    """

    bootstrap_servers: str
    group_id: str
    client_id: str = "model-health"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    # How long construction may wait for the first broker before raising BrokerUnavailable.
    bootstrap_timeout_s: float = 10.0


@dataclass(frozen=True)
class ProducerSettings:
    bootstrap_servers: str
    client_id: str = "model-health"
    acks: str = "all"
    linger_ms: int = 20
    request_timeout_ms: int = 30_000
    # A record not acknowledged by then fails, and the next flush() raises for it.
    delivery_timeout_ms: int = 120_000
    # How long send() may block while the local buffer is full.
    max_block_ms: int = 60_000
    # Off by default, as in librdkafka: a broker that forgets producer ids (tansu in memory,
    # restarted) refuses an idempotent producer's next batch with UnknownProducerId for good.
    idempotent: bool = False
    bootstrap_timeout_s: float = 10.0


class Consumer(Protocol):
    """A group consumer with manual commits.

    The caller must call :meth:`poll` continuously, at most every 1–3 s, even while it has
    nothing to do: group joins, heartbeats and rebalance callbacks all happen inside poll,
    and kafka-python 3.0.12 can lose a finished join when the application stays outside it.
    Rebalance callbacks run on the caller's thread, inside poll; :meth:`seek` and
    :meth:`commit` may be called from them. ``on_revoke`` is never called with no partitions;
    ``on_assign`` is, when the group leaves this member nothing.
    """

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None: ...

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Message]: ...

    def seek(self, topic: str, partition: int, offset: int) -> None: ...

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Synchronously commit ``(topic, partition) -> next offset to read``."""
        ...

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]: ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    def high_watermarks(self) -> dict[TopicPartition, int]:
        """Log-end offsets of assigned partitions as of their latest fetch (for lag)."""
        ...

    def close(self) -> None: ...


class Producer(Protocol):
    """A batching producer whose failures surface at :meth:`flush` instead of vanishing."""

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
    ) -> None: ...

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every send so far; raise :class:`ProduceFailed` if any was not delivered."""
        ...

    def close(self) -> None: ...


class KafkaIOError(Exception):
    """A Kafka operation failed; the client's own exception is the ``__cause__``."""


class BrokerUnavailable(KafkaIOError, UserError):
    """No broker answered in time: usually a wrong ``bootstrap_servers`` or a broker down."""


class CommitFailed(KafkaIOError):
    """The group moved on (rebalance, expired member): the partitions may belong to another."""


class ProduceFailed(KafkaIOError):
    def __init__(self, message: str, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


def check_client(client: str) -> str:
    if client not in CLIENTS:
        raise UserError(f"unknown Kafka client {client!r}; choose one of {', '.join(CLIENTS)}")
    return client


def describe_failures(count: int, distinct: Sequence[str]) -> str:
    """``count`` failed records, ``distinct`` their different errors (the first few)."""
    return f"{count} message(s) not delivered: {'; '.join(distinct[:3])}"
