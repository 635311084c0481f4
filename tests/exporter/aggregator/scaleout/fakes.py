"""Consumer groups over the in-memory Kafka of tests/support/fake_kafka.py.

:class:`FakeGroup` spreads a topic set's partitions over its live members and calls their
rebalance callbacks the way an eager rebalance does: revoke everything, then assign. As in
kafka-python 3 (``SubscriptionState.assign_from_subscribed``), a partition a member keeps
across the rebalance keeps its fetch position, whatever was committed; a newly assigned one
starts at the group's commit. A member's commit of a partition it does not own fails with
``CommitFailed``, as a stale generation's does. :class:`Crash` stands for ``kill -9``:
raised from a hook, it unwinds a stage without any cleanup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from exporter.kafka import CommitFailed, PartitionsCallback, ProduceFailed, TopicPartition
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer


class Crash(BaseException):
    """The process died here (BaseException: no ``except Exception`` may swallow it)."""


class FakeGroup:
    def __init__(self, log: FakeLog, name: str) -> None:
        self.log = log
        self.name = name
        self.members: list[GroupConsumer] = []
        self.offsets: dict[TopicPartition, int] = {}

    def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        wanted = set(topics)
        return sorted(tp for tp in self.log.partitions if tp.topic in wanted)

    def rebalance(self) -> None:
        members = [m for m in self.members if m.subscribed]
        kept: dict[GroupConsumer, dict[TopicPartition, int]] = {}
        for member in members:
            kept[member] = dict(member.positions)
            old = sorted(member.positions)
            member.positions = {}
            if old and member.on_revoke is not None:
                member.on_revoke(old)
        for index, member in enumerate(members):
            mine = [tp for i, tp in enumerate(self.partitions(member.topics)) if i % len(members) == index]
            member.positions = {tp: kept[member].get(tp, self.offsets.get(tp, 0)) for tp in mine}
            if member.on_assign is not None:
                member.on_assign(mine)

    def crash(self, member: GroupConsumer) -> None:
        """The member vanished (no revoke callback); the others get its partitions."""
        if member in self.members:
            self.members.remove(member)
        member.positions = {}
        self.rebalance()


class GroupConsumer(FakeConsumer):
    """A member of ``group`` (after ``subscribe``), or, never subscribed, a plain offset store."""

    def __init__(self, group: FakeGroup, batch: int = 7) -> None:
        super().__init__(group.log, batch)
        self.group = group
        self.subscribed = False
        self.on_assign: PartitionsCallback | None = None
        self.on_revoke: PartitionsCallback | None = None
        self.commit_hook: Callable[[Mapping[tuple[str, int], int]], None] | None = None

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        self.topics = list(topics)
        self.on_assign, self.on_revoke = on_assign, on_revoke
        self.subscribed = True
        self.group.members.append(self)
        self.group.rebalance()

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if self.subscribed:
            foreign = [tp for tp in offsets if TopicPartition(*tp) not in self.positions]
            if foreign:
                raise CommitFailed(f"not assigned: {foreign}")
        if self.commit_hook is not None:
            self.commit_hook(offsets)  # before the commit lands: a death here loses it
        for (topic, partition), offset in offsets.items():
            self.group.offsets[TopicPartition(topic, partition)] = offset

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]:
        return {TopicPartition(*p): self.group.offsets.get(TopicPartition(*p)) for p in partitions}

    def close(self) -> None:
        if self in self.group.members:
            self.group.members.remove(self)
            old = sorted(self.positions)
            self.positions = {}
            if old and self.on_revoke is not None:
                self.on_revoke(old)
            self.group.rebalance()


class HookedProducer(FakeProducer):
    """A producer that can die (``Crash``) or fail (``ProduceFailed``) after ``sends`` sends."""

    def __init__(self, log: FakeLog) -> None:
        super().__init__(log)
        self.sent = 0
        self.failures = 0
        self.die_after: int | None = None
        self.fail_after: int | None = None

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        if self.die_after is not None and self.sent >= self.die_after:
            raise Crash(f"died after {self.sent} sends")
        if self.fail_after is not None and self.sent >= self.fail_after:
            self.fail_after = None
            self.failed = True
            return  # lost; flush reports it
        super().send(topic, value, key, headers, partition)
        self.sent += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        super().flush(timeout_s)
        if getattr(self, "failed", False):
            self.failed = False
            self.failures += 1
            raise ProduceFailed("1 message(s) not delivered: test")
