"""Stage-2 handover from a shared snapshot: a replica that takes a summaries partition over,
with no local checkpoint, restores the previous owner's published state and merges only what
came after it — not a replay from offset 0 — and still exports what one process exports."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.aggregator.scaleout import wire
from exporter.kafka import Message
from tests.exporter.aggregator.scaleout.harness import (
    SUMMARIES,
    Clock,
    Cluster,
    Feeder,
    assert_same_metrics,
    combine,
    exposition,
    make_config,
    single_run,
)
from tests.exporter.aggregator.scaleout.traffic import make_traffic
from tests.support.fake_kafka import FakeLog

ROWS = 300
BASE = 1_000.0
NOW = BASE + ROWS + 50


@pytest.fixture(scope="module")
def traffic():
    return make_traffic(ROWS, BASE)


@pytest.fixture(scope="module")
def expected(profiles, traffic, tmp_path_factory):
    aggregator = single_run(make_config(profiles, tmp_path_factory.mktemp("single")), traffic, NOW)
    return exposition(aggregator.snapshot(), aggregator.latency())


def _cluster(profiles, traffic, tmp_path, join_shards: int = 0) -> tuple[Cluster, Feeder]:
    log = FakeLog()
    config = make_config(profiles, tmp_path / "state", snapshot_interval_seconds=0, join_shards=join_shards)
    return Cluster(config, log, Clock(NOW), snapshots=True), Feeder(log, traffic)


def _scraped(cluster: Cluster) -> dict[str, float]:
    return combine([exposition(r.merge.evaluate(), r.merge.latency()) for r in cluster.replicas])


def _count_merges(replica) -> list[tuple[int, int]]:  # noqa: ANN001 - a harness Replica
    """Record (partition, offset) of every summaries message the replica's stage 2 merges."""
    merged: list[tuple[int, int]] = []
    merge = replica.merge.merge

    def counting(state, message):  # noqa: ANN001, ANN202
        merged.append((message.partition, message.offset))
        merge(state, message)

    replica.merge.merge = counting
    return merged


@pytest.mark.parametrize("join_shards", [0, 3])
def test_a_new_owner_restores_the_snapshot_and_merges_only_what_came_after(
    profiles, traffic, expected, tmp_path, join_shards
):
    """With join shards the snapshot also holds the shards' waiting rows and what they last
    reported; the reports the first owner made after it are made again, and merged once."""
    cluster, feeder = _cluster(profiles, traffic, tmp_path, join_shards)
    first = cluster.start(tmp_path / "first")
    feeder.feed(len(feeder.pending) * 2 // 3)
    cluster.drain()
    first.merge.checkpoint()  # publishes each owned partition's state, then the pointer
    covered = {s.partition: s.next_offset for s in first.merge.states.values()}
    assert all(covered.values())
    snapshots = [m for m in cluster.log.messages(SUMMARIES) if wire.SnapshotPart.of(m) is not None]
    assert {m.partition for m in snapshots} == set(covered)
    feeder.feed()
    first.step(3)  # more merged after the snapshot, never snapshotted
    first.kill()

    second = cluster.start(tmp_path / "second")  # another pod: no local checkpoint
    merged = _count_merges(second)
    cluster.drain()
    assert_same_metrics(expected, _scraped(cluster))
    assert merged, "the new owner merged what came after the snapshots"
    first_merged = {p: min(o for q, o in merged if q == p) for p in {q for q, _ in merged}}
    assert all(first_merged.get(p, covered[p]) >= covered[p] for p in covered)  # nothing before a snapshot again


def test_without_a_usable_snapshot_the_new_owner_replays_from_the_start(profiles, traffic, expected, tmp_path):
    cluster, feeder = _cluster(profiles, traffic, tmp_path)
    first = cluster.start(tmp_path / "first")
    feeder.feed(len(feeder.pending) // 2)
    cluster.drain()
    first.merge.checkpoint()
    # The snapshot the pointer names is not there any more (say a chunk was lost): only chunks of
    # some other snapshot remain, and the search reaches the end of the log without it.
    for tp, log in cluster.log.partitions.items():
        if tp.topic == SUMMARIES:
            log[:] = [_elsewhere(m) if wire.SnapshotPart.of(m) is not None else m for m in log]
    feeder.feed()
    first.kill()
    second = cluster.start(tmp_path / "second")
    merged = _count_merges(second)
    cluster.drain()
    assert_same_metrics(expected, _scraped(cluster))
    assert {o for _, o in merged} >= {0}  # replayed from the partitions' first offsets


def _elsewhere(message: Message) -> Message:
    headers = tuple(
        (name, b"999999" if name == wire.SNAPSHOT_COVERS_HEADER else value) for name, value in message.headers
    )
    return replace(message, headers=headers)


@pytest.mark.parametrize("older", [1, 2])
def test_a_replica_writing_an_older_format_publishes_no_snapshot(profiles, traffic, expected, tmp_path, older):
    """While it writes format 1 or 2 (an older build may still own summaries partitions) a
    replica publishes no state snapshot: before format 3 a snapshot's join buffers held
    request ids, which an older owner would read this build's keys as."""
    log = FakeLog()
    config = make_config(profiles, tmp_path / "state", snapshot_interval_seconds=0, summaries_format=older)
    cluster, feeder = Cluster(config, log, Clock(NOW), snapshots=True), Feeder(log, traffic)
    replica = cluster.start(tmp_path / "only")
    feeder.feed()
    cluster.drain()
    replica.merge.checkpoint()
    assert not [m for m in log.messages(SUMMARIES) if wire.SnapshotPart.of(m) is not None]
    assert {wire.SummaryRange.of(m).format for m in log.messages(SUMMARIES) if wire.SummaryRange.of(m)} == {older}
    assert_same_metrics(expected, _scraped(cluster))
