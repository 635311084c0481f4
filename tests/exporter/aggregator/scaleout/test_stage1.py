"""Stage 1's progress protocol, one crash point at a time, over the in-memory Kafka."""

from __future__ import annotations

import json

import pytest

from exporter.aggregator.scaleout import wire
from exporter.aggregator.scaleout.routing import pipeline_key, summary_partition
from exporter.kafka import TopicPartition
from tests.exporter.aggregator.scaleout.fakes import Crash
from tests.exporter.aggregator.scaleout.harness import (
    PREDICTIONS,
    SUMMARIES,
    SUMMARY_PARTITIONS,
    Clock,
    Cluster,
    make_config,
)
from tests.support.fake_kafka import FakeLog

NOW = 2_000.0
P0 = TopicPartition(PREDICTIONS, 0)


def records(start: int, count: int, models=(("fraud", "7"), ("churn", "1"))) -> bytes:
    lines = [
        json.dumps(
            {
                "model": m,
                "model_version": v,
                "request_id": f"{m}-{start + i}",
                "timestamp": 1_000.0 + start + i,
                "features": {"num_00": float(i), "cat_0": "c0_00"},
                "prediction": 0.5,
            }
        )
        for i in range(count)
        for m, v in models
    ]
    return "\n".join(lines).encode()


@pytest.fixture
def cluster(profiles, tmp_path):
    log = FakeLog()
    for topic, count in ((PREDICTIONS, 1), ("model-labels", 1), (SUMMARIES, SUMMARY_PARTITIONS)):
        for p in range(count):
            log.partitions.setdefault(TopicPartition(topic, p), [])
    return Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))


def append(cluster: Cluster, *messages: bytes) -> None:
    for message in messages:
        cluster.log.append(PREDICTIONS, message, partition=0)


def published(cluster: Cluster) -> list[tuple[str, int, int]]:
    """(key, start, end) of every summaries message, in log order per partition."""
    out = []
    for message in cluster.log.messages(SUMMARIES):
        summary = wire.SummaryRange.of(message)
        out.append((summary.key, summary.start, summary.end))
    return out


def samples(cluster: Cluster) -> int:
    return sum(r.merge.evaluate().pipeline.predictions.get(k, 0) for r in cluster.replicas for k in r.merge.profiles)


def test_a_flush_publishes_one_message_per_model_and_one_for_the_pipeline(cluster):
    append(cluster, records(0, 5), records(5, 5))
    replica = cluster.start()
    replica.partial.poll_once()
    assert replica.partial.flush()
    messages = cluster.log.messages(SUMMARIES)
    keys = {m.key.decode(): m for m in messages}
    assert set(keys) == {"fraud", "churn", pipeline_key(PREDICTIONS, 0)}
    for key, message in keys.items():
        assert message.partition == summary_partition(key, SUMMARY_PARTITIONS)
        assert (wire.SummaryRange.of(message).start, wire.SummaryRange.of(message).end) == (0, 2)
    assert cluster.partial_group.offsets[P0] == 2 and cluster.progress.offsets[P0] == 2
    replica.merge.poll_once()
    assert samples(cluster) == 20


def test_crash_after_the_intent_publishes_that_range_alone_then_goes_on(cluster):
    append(cluster, records(0, 5), records(5, 5))
    first = cluster.start()
    first.partial.poll_once()
    first.producer.die_after = first.producer.sent  # intent written, nothing produced
    with pytest.raises(Crash):
        first.partial.flush()
    first.kill()
    assert cluster.progress.offsets[P0] == 2 and cluster.partial_group.offsets.get(P0, 0) == 0
    append(cluster, records(10, 5))  # more traffic while nobody consumes
    second = cluster.start()
    cluster.drain()
    # [0, 2) exactly as the intent said, on its own, then the rest as a new range.
    assert sorted(set((s, e) for _, s, e in published(cluster))) == [(0, 2), (2, 3)]
    assert samples(cluster) == 30
    assert second.merge.stats().duplicates == 0


@pytest.mark.parametrize("sent", [1, 2])
def test_crash_halfway_through_a_flush_publishes_the_same_range_again(cluster, sent):
    append(cluster, records(0, 5), records(5, 5))
    first = cluster.start()
    first.partial.poll_once()
    first.producer.die_after = first.producer.sent + sent  # some of the range's messages are out
    with pytest.raises(Crash):
        first.partial.flush()
    first.kill()
    second = cluster.start()
    cluster.drain()
    assert {(s, e) for _, s, e in published(cluster)} == {(0, 2)}
    assert len(published(cluster)) == 3 + sent
    assert samples(cluster) == 20  # every record once
    assert second.merge.stats().duplicates == sent


def test_crash_before_the_final_commit_publishes_duplicates_that_are_skipped(cluster):
    append(cluster, records(0, 5))
    first = cluster.start()
    first.partial.poll_once()
    calls = []

    def die_at_final_commit(offsets):
        calls.append(offsets)
        if len(calls) == 2:
            raise Crash("after producing, before the commit")

    first.partial.consumer.commit_hook = die_at_final_commit
    with pytest.raises(Crash):
        first.partial.flush()
    first.kill()
    assert cluster.partial_group.offsets[P0] == 0 and cluster.progress.offsets[P0] == 1
    second = cluster.start()
    cluster.drain()
    assert published(cluster).count(("fraud", 0, 1)) == 2
    assert samples(cluster) == 10
    assert second.merge.stats().duplicates == 3  # fraud, churn and the pipeline message
    assert cluster.partial_group.offsets[P0] == 1


def test_a_failed_produce_rewinds_and_publishes_the_same_range_again(cluster):
    append(cluster, records(0, 5), records(5, 5))
    replica = cluster.start()
    replica.partial.poll_once()
    replica.producer.fail_after = replica.producer.sent + 1  # the second message is lost
    assert not replica.partial.flush()
    append(cluster, records(10, 5))
    cluster.drain()
    ranges = [(s, e) for _, s, e in published(cluster)]
    assert ranges.count((0, 2)) == 2 + 3 and (2, 3) in ranges  # all but the lost one, then the range again, whole
    assert samples(cluster) == 30
    assert replica.merge.stats().duplicates == 2


def test_a_replica_that_lost_its_partition_publishes_nothing(cluster):
    append(cluster, records(0, 5))
    zombie = cluster.start()
    zombie.partial.poll_once()
    zombie.partial.consumer.positions = {}  # the group moved on without telling it
    assert not zombie.partial.flush()  # the fence (step 2's commit) is refused
    # Nothing published; the intent it wrote first only tells the next owner which range to
    # publish (test_fencing.py follows that through).
    assert cluster.log.messages(SUMMARIES) == []


def test_a_rebalance_drops_unpublished_work_and_the_owner_reads_it_again(cluster):
    append(cluster, records(0, 5), records(5, 5))
    first = cluster.start()
    first.partial.poll_once()
    assert first.partial._open  # folded, not published
    second = cluster.start()  # eager rebalance: everything revoked, then reassigned
    assert not first.partial._open
    cluster.drain()
    assert {(s, e) for _, s, e in published(cluster)} == {(0, 2)}
    assert samples(cluster) == 20
    assert first.merge.stats().duplicates + second.merge.stats().duplicates == 0


def test_a_failed_produce_while_publishing_the_range_in_flight_reads_it_again(cluster):
    append(cluster, records(0, 5), records(5, 5))
    first = cluster.start()
    first.partial.poll_once()
    first.producer.die_after = first.producer.sent  # the intent is all that was written
    with pytest.raises(Crash):
        first.partial.flush()
    first.kill()
    append(cluster, records(10, 5))
    second = cluster.start()
    second.producer.fail_after = 0  # the publication of [0, 2) loses its first message
    second.partial.poll_once()
    assert not any(e == 3 for _, _, e in published(cluster))  # nothing after the cut went out
    cluster.drain()
    assert samples(cluster) == 30
    assert {(s, e) for _, s, e in published(cluster)} == {(0, 2), (2, 3)}


def test_copies_within_a_range_are_dropped_and_counted_exactly_once_through_a_crash(cluster):
    """Stage 1 drops a copy whose first was folded in the same source range (a producer's
    retry lands on the same partition); the range read again after a crash drops the same
    copies, so counts stay exact; the pipeline summary carries the duplicate count."""
    append(cluster, records(0, 5), records(0, 5), records(5, 5), records(3, 2))  # 7 copies of 2 models
    first = cluster.start()
    first.partial.poll_once()
    first.producer.die_after = first.producer.sent + 1  # part of the range is out
    with pytest.raises(Crash):
        first.partial.flush()
    first.kill()
    cluster.start()
    cluster.drain()
    assert samples(cluster) == 20
    duplicates = sum(sum(r.merge.evaluate().pipeline.duplicates.values()) for r in cluster.replicas)
    assert duplicates == 14
