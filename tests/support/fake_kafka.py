"""In-memory stand-ins for the Kafka Consumer and Producer protocols, for unit tests.

They keep the real client's shape: partitions with offsets, manual commits, seek,
rebalance callbacks on subscribe, and high watermarks. Integration tests use the real
broker (tests/support/broker.py); these keep the pipeline's own tests fast and exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from exporter.kafka import Message, PartitionsCallback, TopicPartition


class FakeLog:
    """Topics as lists of messages per partition, shared by fake consumers and producers."""

    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, list[Message]] = {}
        self.committed: dict[TopicPartition, int] = {}

    def append(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int = 0,
    ) -> None:
        tp = TopicPartition(topic, partition)
        log = self.partitions.setdefault(tp, [])
        log.append(Message(topic, partition, len(log), key, value, tuple(headers)))

    def messages(self, topic: str) -> list[Message]:
        return [m for tp, log in self.partitions.items() if tp.topic == topic for m in log]


class FakeConsumer:
    def __init__(self, log: FakeLog, batch: int = 50) -> None:
        self.log = log
        self.batch = batch
        self.positions: dict[TopicPartition, int] = {}
        self.topics: list[str] = []

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        self.topics = list(topics)
        assigned = [tp for tp in self.log.partitions if tp.topic in self.topics]
        for tp in assigned:
            self.positions[tp] = self.log.committed.get(tp, 0)
        if on_assign is not None:
            on_assign(assigned)

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Message]:
        out: list[Message] = []
        for tp in sorted(self.positions):
            log = self.log.partitions.get(tp, [])
            take = log[self.positions[tp] : self.positions[tp] + min(self.batch, max_records) - len(out)]
            out.extend(take)
            self.positions[tp] += len(take)
        return out

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self.positions[TopicPartition(topic, partition)] = offset

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), offset in offsets.items():
            self.log.committed[TopicPartition(topic, partition)] = offset

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]:
        return {TopicPartition(*p): self.log.committed.get(TopicPartition(*p)) for p in partitions}

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self.positions)

    def high_watermarks(self) -> dict[TopicPartition, int]:
        return {tp: len(self.log.partitions.get(tp, [])) for tp in self.positions}

    def close(self) -> None:
        pass


class FakeProducer:
    def __init__(self, log: FakeLog) -> None:
        self.log = log
        self.flushes = 0

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        self.log.append(topic, value, key, headers, partition or 0)

    def flush(self, timeout_s: float = 30.0) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass
