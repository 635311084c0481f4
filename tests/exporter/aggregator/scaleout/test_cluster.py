"""Scale-out replicas over the in-memory Kafka export what one single-mode process exports,
to the record, however they are killed, restarted and rebalanced along the way."""

from __future__ import annotations

import os

import numpy as np
import pytest

from exporter.aggregator.scaleout import wire
from tests.exporter.aggregator.scaleout.fakes import Crash
from tests.exporter.aggregator.scaleout.harness import (
    Clock,
    Cluster,
    Feeder,
    assert_same_metrics,
    combine,
    exposition,
    fill,
    make_config,
    single_run,
)
from tests.exporter.aggregator.scaleout.traffic import make_traffic
from tests.support.fake_kafka import FakeLog

ROWS = 300
BASE = 1_000.0
NOW = BASE + ROWS + 50  # both windows hold data


@pytest.fixture(scope="module")
def traffic():
    return make_traffic(ROWS, BASE)


@pytest.fixture(scope="module")
def expected(profiles, traffic, tmp_path_factory):
    config = make_config(profiles, tmp_path_factory.mktemp("single"))
    aggregator = single_run(config, traffic, NOW)
    return exposition(aggregator.snapshot(), aggregator.latency()), aggregator.snapshot()


def scraped(cluster: Cluster) -> dict[str, float]:
    return combine([exposition(r.merge.evaluate(), r.merge.latency()) for r in cluster.replicas])


def new_cluster(
    profiles, traffic, tmp_path, feeder: bool = False, join_shards: int = 0
) -> Cluster | tuple[Cluster, Feeder]:
    log = FakeLog()
    cluster = Cluster(make_config(profiles, tmp_path / "state", join_shards=join_shards), log, Clock(NOW))
    if feeder:
        return cluster, Feeder(log, traffic)
    fill(log, traffic)
    return cluster


def test_the_single_run_counts_what_was_sent(expected, traffic):
    _, snapshot = expected
    assert snapshot.pipeline.predictions == traffic.rows
    assert snapshot.pipeline.labels_joined == traffic.labelled
    assert sum(snapshot.pipeline.rejected.values()) == sum(traffic.refused.values())
    assert {m.windows["5m"].samples for m in snapshot.models} != {0}
    assert any(d.drift for m in snapshot.models for d in m.windows["1h"].features.values())


@pytest.mark.parametrize(("replicas", "join_shards"), [(1, 0), (2, 0), (3, 0), (1, 3), (3, 5)])
def test_replicas_export_what_one_process_exports(profiles, traffic, expected, tmp_path, replicas, join_shards):
    """With join shards the labels are joined on other partitions than their models' (here
    both), and the owners' metrics are still those of one process."""
    cluster = new_cluster(profiles, traffic, tmp_path, join_shards=join_shards)
    for i in range(replicas):
        cluster.start(tmp_path / f"r{i}")
    cluster.drain()
    assert_same_metrics(expected[0], scraped(cluster))
    owners = [{m.model for m in r.merge.snapshot().models} for r in cluster.replicas]
    assert sum(len(o) for o in owners) == len(set().union(*owners)) == 2  # each model has one owner
    if replicas > 1:
        assert sum(1 for o in owners if o) == 2  # two summaries partitions: both owners busy


# SCALEOUT_SEEDS=40 runs more schedules (all 40 pass; a few keep the suite quick).
SEEDS = int(os.environ.get("SCALEOUT_SEEDS", "5"))


@pytest.mark.parametrize(
    ("seed", "parts", "join_shards"),
    [(s, False, 0) for s in range(SEEDS)]
    + [(s, True, 0) for s in range(max(2, SEEDS // 2))]
    + [(s, parts, 3) for s in range(max(2, SEEDS // 2)) for parts in (False, True)],
)
def test_kill_9_at_random_points_counts_every_record_once(
    profiles, traffic, expected, tmp_path, seed, parts, join_shards, monkeypatch
):
    """Replicas die anywhere — mid-poll, between the intent and the produce, halfway
    through a flush's messages, before the final commit — produces fail, replicas come back,
    new ones join, partitions move; the end state equals the clean single-process run.
    With ``parts``, every range goes out in many small messages (as a big one would), so
    deaths also fall between the parts of one range. With ``join_shards``, stage 2 produces
    too (join shards' reports): its sends die and fail as well, and a replay batches the
    reports otherwise than the first pass did."""
    if parts:
        monkeypatch.setattr(wire, "MAX_SUMMARIES_PER_MESSAGE", 20)
        monkeypatch.setattr(wire, "MAX_ROWS_PER_MESSAGE", 7)
    rng = np.random.default_rng(seed)
    cluster, feeder = new_cluster(profiles, traffic, tmp_path, feeder=True, join_shards=join_shards)
    generation = 0

    producers = []

    def start():
        nonlocal generation
        generation += 1
        replica = cluster.start(tmp_path / f"r{generation % 3}")  # restarts reuse state dirs
        producers.append(replica.producer)
        return replica

    start()
    start()
    crashes = 0
    for _ in range(12):
        victim = cluster.replicas[int(rng.integers(len(cluster.replicas)))]
        places = ["poll", "intent", "produce", "commit", "lost"]
        where = rng.choice(places + ["report", "report-lost"] if join_shards else places)
        reports = victim.merge._dead_letters
        if where == "report":  # stage 2 dies sending join shards' reports
            reports.die_after = reports.sent + int(rng.integers(0, 3))
        elif where == "report-lost":  # a send of reports fails: they stay, and go again
            reports.fail_after = reports.sent + int(rng.integers(0, 3))
        elif where == "intent":  # the intent is written, nothing produced
            victim.producer.die_after = victim.producer.sent
        elif where == "produce":  # some of a flush's messages are out
            victim.producer.die_after = victim.producer.sent + int(rng.integers(1, 4))
        elif where == "lost":  # a produce fails (no crash): the range is read and sent again
            for replica in cluster.replicas:
                replica.producer.fail_after = replica.producer.sent + int(rng.integers(0, 4))
        elif where == "commit":
            victim.partial.consumer.commit_hook = _die_on_second_commit()
        try:
            for _ in range(int(rng.integers(1, 12))):
                feeder.feed(int(rng.integers(0, 4)))  # traffic keeps arriving
                for replica in list(cluster.replicas):
                    replica.step()
        except Crash:
            crashes += 1
        victim.kill()
        if len(cluster.replicas) < 2 or rng.random() < 0.7:
            start()
    feeder.feed()
    cluster.drain()
    got = scraped(cluster)
    assert_same_metrics(expected[0], got)
    # The hooks fired: deaths and lost sends inside the protocol, not only between polls.
    assert crashes + sum(p.failures for p in producers) >= 2
    assert sum(r.merge.stats().duplicates for r in cluster.replicas) > 0  # the protocol did work
    assert sum(r.merge.stats().overlaps for r in cluster.replicas) == 0


def _die_on_second_commit():
    calls = {"n": 0}

    def hook(offsets) -> None:
        calls["n"] += 1
        if calls["n"] % 2 == 0:  # step 3 of a flush: after the produce, at the final commit
            raise Crash("died after producing, before the final commit")

    return hook
