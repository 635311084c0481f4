"""Stage 1's fence: a replica that loses its partition mid-flush never publishes into the next
owner's state — either it learns at the ownership check and produces nothing, or its late copy
is the very range the next owner publishes again, merged once."""

from __future__ import annotations

import pytest

from tests.exporter.aggregator.scaleout.harness import (
    Clock,
    Cluster,
    assert_same_metrics,
    combine,
    exposition,
    fill,
    make_config,
    single_run,
)
from tests.exporter.aggregator.scaleout.traffic import make_traffic
from tests.support.fake_kafka import FakeLog

ROWS = 200
BASE = 1_000.0
NOW = BASE + ROWS + 50


@pytest.fixture(scope="module")
def traffic():
    return make_traffic(ROWS, BASE)


@pytest.fixture(scope="module")
def expected(profiles, traffic, tmp_path_factory):
    aggregator = single_run(make_config(profiles, tmp_path_factory.mktemp("single")), traffic, NOW)
    return exposition(aggregator.snapshot(), aggregator.latency())


def _cluster(profiles, traffic, tmp_path) -> Cluster:
    log = FakeLog()
    fill(log, traffic)
    return Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))


def _scraped(cluster: Cluster) -> dict[str, float]:
    return combine([exposition(r.merge.evaluate(), r.merge.latency()) for r in cluster.replicas])


def _fold_everything(replica) -> None:  # noqa: ANN001 - a harness Replica
    """Read all of the replica's source partitions without publishing (flushes never come due)."""
    replica.partial._due = lambda: False
    while replica.partial.poll_once():
        pass
    assert replica.partial._open


def test_a_replica_that_lost_its_partitions_before_the_fence_produces_nothing(profiles, traffic, expected, tmp_path):
    cluster = _cluster(profiles, traffic, tmp_path)
    zombie = cluster.start(tmp_path / "zombie")
    _fold_everything(zombie)
    produced_before = zombie.producer.sent

    def lose_partitions_after_the_intent(offsets) -> None:  # noqa: ANN001
        # The intent is being written; the group moves the partitions on before the check.
        zombie.partial.progress.commit_hook = None
        cluster.partial_group.crash(zombie.partial.consumer)

    zombie.partial.progress.commit_hook = lose_partitions_after_the_intent
    assert zombie.partial.flush() is False  # refused at the fence
    assert zombie.producer.sent == produced_before  # nothing published
    cluster.merge_group.crash(zombie.merge.consumer)
    cluster.replicas.remove(zombie)
    cluster.start(tmp_path / "next")  # reads the zombie's intent and publishes that range
    cluster.drain()
    assert_same_metrics(expected, _scraped(cluster))
    assert sum(r.merge.stats().overlaps for r in cluster.replicas) == 0


def test_a_zombies_late_copy_is_the_next_owners_range_and_is_merged_once(profiles, traffic, expected, tmp_path):
    cluster = _cluster(profiles, traffic, tmp_path)
    zombie = cluster.start(tmp_path / "zombie")
    _fold_everything(zombie)
    send = zombie.producer.send
    took_over = []

    def late_send(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if not took_over:
            # Past the fence, the zombie stalls; meanwhile the group moves its partitions to a
            # new replica, which reads the intent and publishes the same ranges first.
            took_over.append(True)
            cluster.partial_group.crash(zombie.partial.consumer)
            cluster.merge_group.crash(zombie.merge.consumer)
            cluster.replicas.remove(zombie)
            cluster.start(tmp_path / "next")
            cluster.drain()
        send(*args, **kwargs)

    zombie.producer.send = late_send  # type: ignore[method-assign]
    zombie.partial.flush()  # its late copy goes out after the new owner's
    cluster.drain()
    got = _scraped(cluster)
    assert_same_metrics(expected, got)
    stats = [r.merge.stats() for r in cluster.replicas]
    assert sum(s.duplicates for s in stats) > 0  # the late copy was refused, and counted
    assert sum(s.overlaps for s in stats) == 0
