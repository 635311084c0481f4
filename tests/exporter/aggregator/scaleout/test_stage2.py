"""Stage 2: deduplication, replay, the local checkpoint, refusals, lateness and the join clock."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from exporter.aggregator.scaleout import routing, wire
from exporter.aggregator.scaleout.routing import summary_partition
from exporter.aggregator.scaleout.stage2 import MergeStage
from exporter.kafka import TopicPartition
from tests.exporter.aggregator.scaleout.fakes import FakeGroup, GroupConsumer
from tests.exporter.aggregator.scaleout.harness import (
    PREDICTIONS,
    SUMMARIES,
    SUMMARY_PARTITIONS,
    Clock,
    Cluster,
    exposition,
    make_config,
)
from tests.support.fake_kafka import FakeLog, FakeProducer

NOW = 2_000.0


def records(start: int, count: int, model=("fraud", "7"), at: float = 1_000.0, labels: bool = False) -> bytes:
    name, version = model
    if labels:
        lines = [
            json.dumps({"model": name, "request_id": f"{name}-{start + i}", "label": 1, "timestamp": at})
            for i in range(count)
        ]
    else:
        lines = [
            json.dumps(
                {
                    "model": name,
                    "model_version": version,
                    "request_id": f"{name}-{start + i}",
                    "timestamp": at + i,
                    "features": {"num_00": float(i), "cat_0": "c0_00"},
                    "prediction": 0.7,
                }
            )
            for i in range(count)
        ]
    return "\n".join(lines).encode()


def new_cluster(profiles, tmp_path, join_shards: int = 0, **overrides) -> Cluster:
    log = FakeLog()
    for topic, count in ((PREDICTIONS, 2), ("model-labels", 1), (SUMMARIES, SUMMARY_PARTITIONS)):
        for p in range(count):
            log.partitions.setdefault(TopicPartition(topic, p), [])
    config = make_config(profiles, tmp_path / "state", join_shards=join_shards)
    if overrides:
        config = config.model_copy(update=overrides)
    return Cluster(config, log, Clock(NOW))


def publish(cluster: Cluster, *batches: tuple[str, int, bytes]) -> None:
    """Stage 1 alone publishes each (topic, partition, message) batch as its own range."""
    replica = cluster.replicas[0] if cluster.replicas else cluster.start()
    for topic, partition, value in batches:
        cluster.log.append(topic, value, partition=partition)
        while replica.partial.poll_once():
            pass
        assert replica.partial.flush()


def merge_stage(cluster: Cluster, state_dir=None, clock: float = NOW, batch: int = 3) -> MergeStage:
    """A lone stage-2 member (its own group) that has merged all there is."""
    config = (
        cluster.config
        if state_dir is None
        else cluster.config.model_copy(update={"state": cluster.config.state.model_copy(update={"dir": state_dir})})
    )
    stage = MergeStage(
        config,
        cluster.models,
        GroupConsumer(FakeGroup(cluster.log, f"solo-{id(config)}-{batch}"), batch=batch),
        SUMMARY_PARTITIONS,
        clock=lambda: clock,
        # Join shards send their reports on the summaries topic: stage 2 then needs its producer.
        dead_letters=FakeProducer(cluster.log) if cluster.config.kafka.join_shards else None,
    )
    stage.subscribe()
    while stage.poll_once():
        pass
    return stage


def scrape(stage: MergeStage) -> dict[str, float]:
    return exposition(stage.evaluate(), stage.latency())


def test_a_range_merged_once_is_skipped_after(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path)
    publish(cluster, (PREDICTIONS, 0, records(0, 10)), (PREDICTIONS, 0, records(10, 10)))
    first = next(m for m in cluster.log.messages(SUMMARIES) if m.key == b"fraud")
    cluster.log.append(SUMMARIES, first.value, first.key, first.headers, partition=first.partition)  # a re-publication
    stage = merge_stage(cluster)
    stage.evaluate()
    assert stage.stats().duplicates == 1 and stage.stats().overlaps == 0
    assert stage.snapshot().pipeline.predictions[("fraud", "7")] == 20


def test_an_overlapping_range_is_refused_and_counted(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path)
    publish(cluster, (PREDICTIONS, 0, records(0, 10)), (PREDICTIONS, 0, records(10, 10)))
    second = [m for m in cluster.log.messages(SUMMARIES) if m.key == b"fraud"][1]
    summary = replace(wire.SummaryRange.of(second), start=0, end=5)  # [0, 5) after [0, 1) and [1, 2)
    cluster.log.append(SUMMARIES, second.value, second.key, summary.headers(), partition=second.partition)
    stage = merge_stage(cluster)
    stage.evaluate()
    assert stage.stats().overlaps == 1
    assert stage.snapshot().pipeline.predictions[("fraud", "7")] == 20  # never merged twice, and said so


@pytest.mark.parametrize("join_shards", [0, 3])
def test_replay_and_the_local_checkpoint_end_in_the_same_state(profiles, tmp_path, join_shards):
    cluster = new_cluster(profiles, tmp_path, join_shards)
    _labelled(cluster, later_labels=False)
    first = merge_stage(cluster, tmp_path / "a")
    expected = scrape(first)
    assert expected['model_health_labels_joined_total{model="fraud"}'] == 20
    assert scrape(merge_stage(cluster, tmp_path / "b")) == expected  # a fresh replica replays the topic
    first.checkpoint()
    checkpointed = {p: first.restore(p).next_offset for p in range(SUMMARY_PARTITIONS)}
    assert checkpointed == {p: s.next_offset for p, s in first.states.items()} and all(checkpointed.values())
    publish(cluster, (PREDICTIONS, 0, records(90, 10)))
    restored = merge_stage(cluster, tmp_path / "a")  # the same replica, back: from its checkpoint on
    replayed = merge_stage(cluster, tmp_path / "c")
    while restored.poll_once():  # join shards' reports the replay made again: read, and skipped
        pass
    assert {p: s.next_offset for p, s in restored.states.items()} == {
        p: s.next_offset for p, s in replayed.states.items()
    }
    assert scrape(restored) == scrape(replayed)


def test_a_checkpoint_for_other_profiles_is_not_used(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path)
    publish(cluster, (PREDICTIONS, 0, records(0, 30)))
    stage = merge_stage(cluster, tmp_path / "a")
    stage.checkpoint()
    other = MergeStage(
        cluster.config.model_copy(update={"state": cluster.config.state.model_copy(update={"dir": tmp_path / "a"})}),
        cluster.models,
        GroupConsumer(FakeGroup(cluster.log, "x")),
        SUMMARY_PARTITIONS + 1,
    )
    assert other.restore(0).next_offset == 0  # written for two partitions, read with three: replay


def test_what_cannot_be_merged_is_counted_by_reason(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path)
    publish(cluster, (PREDICTIONS, 0, records(0, 10)))
    fraud = next(m for m in cluster.log.messages(SUMMARIES) if m.key == b"fraud")
    summary = wire.SummaryRange.of(fraud)
    other_partition = 1 - fraud.partition
    ghost = replace(summary, key="ghost", end=summary.end + 1)
    for value, key, headers, partition in (
        (b"junk", b"fraud", replace(summary, start=summary.end, end=9).headers(), fraud.partition),  # undecodable
        (fraud.value, b"fraud", (), fraud.partition),  # no kind header: not a partial summary
        (fraud.value, b"fraud", replace(summary, end=8).headers(), other_partition),  # on the wrong partition
        (fraud.value, b"ghost", ghost.headers(), summary_partition("ghost", SUMMARY_PARTITIONS)),
    ):
        cluster.log.append(SUMMARIES, value, key, headers, partition=partition)
    stage = merge_stage(cluster)
    rejected = stage.evaluate().pipeline.rejected
    assert {r: n for (t, r), n in rejected.items() if t == SUMMARIES} == {
        "invalid_summary": 1,
        "unknown_format": 1,
        "misrouted": 1,
        "unknown_model": 1,
    }
    assert stage.snapshot().pipeline.predictions[("fraud", "7")] == 10


def test_lateness_is_decided_per_slot_by_the_owner(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path, allowed_lateness_seconds=60)
    publish(
        cluster,
        (PREDICTIONS, 0, records(0, 10, at=5_000.0)),  # newest event 5009
        (PREDICTIONS, 1, records(10, 10, at=1_000.0)),  # every slot far behind: late
        (PREDICTIONS, 1, records(20, 10, at=4_945.0)),
    )  # 4945–4954: slot [4920, 4950) still reaches the horizon
    stage = merge_stage(cluster)
    pipeline = stage.evaluate().pipeline
    assert pipeline.late == {"fraud": 10}
    assert pipeline.predictions[("fraud", "7")] == 20


def test_the_label_join_runs_on_publication_time_not_the_wall_clock(profiles, tmp_path):
    cluster = new_cluster(
        profiles, tmp_path, labels=make_config(profiles, tmp_path).labels.model_copy(update={"join_ttl_seconds": 10.0})
    )
    cluster.clock.now = 3_000.0
    publish(cluster, (PREDICTIONS, 0, records(0, 5)))
    cluster.clock.now = 3_005.0
    publish(cluster, ("model-labels", 0, records(0, 2, labels=True)))
    cluster.clock.now = 3_030.0  # past the TTL of the three predictions still waiting
    publish(cluster, ("model-labels", 0, records(2, 3, labels=True)))
    counts = []
    for wall_clock in (3_031.0, 99_999.0):  # replayed at any time, the same answer
        pipeline = merge_stage(cluster, tmp_path / str(wall_clock), clock=wall_clock).evaluate().pipeline
        counts.append((pipeline.labels_joined, pipeline.labels_unmatched, pipeline.labels_pending))
    # Two labels met their prediction; three predictions outlived the TTL before theirs came.
    assert counts[0] == counts[1]
    assert counts[0][:2] == ({"fraud": 2}, {"fraud": 3}) and counts[0][2]["fraud"] == 0


def test_sidecar_summaries_on_the_same_topic_are_merged_once(profiles, tmp_path):
    import math

    import pyarrow as pa

    from exporter.pipeline import summary_wire
    from exporter.pipeline.windows import ModelWindows, WindowSpec

    cluster = new_cluster(profiles, tmp_path)
    publish(cluster, (PREDICTIONS, 0, records(0, 10)))  # ten from stage 1
    profile = cluster.models[("fraud", "7")][1]
    folded = ModelWindows(profile, [WindowSpec("b", 30, 1)], math.inf)  # divides both windows
    folded.fold_predictions(
        pa.table(
            {
                "model": ["fraud"] * 4,
                "model_version": ["7"] * 4,
                "request_id": ["s1", "s2", "s3", "s4"],
                "timestamp": [1_020.0, 1_021.0, 1_022.0, 1_023.0],
                "prediction_score": [0.1, 0.2, 0.3, 0.4],
                "prediction_class": pa.array([None] * 4, pa.string()),
                "latency_ms": [1.0] * 4,
                "status": ["ok"] * 4,
                "f.num_00": [1.0, 2.0, 3.0, 4.0],
            }
        )
    )
    ((start, bucket),) = folded.buckets["b"].items()
    header = summary_wire.SummaryHeader(
        "fraud",
        "7",
        start,
        30,
        "sidecar-pod-a",
        0,
        records=bucket.records,
        profile_created_at=profile.metadata.created_at,
    )
    value = summary_wire.encode_summary(header, bucket)
    for _ in range(2):  # the second is a redelivery
        cluster.log.append(
            SUMMARIES,
            value,
            b"fraud",
            summary_wire.kafka_headers(header),
            partition=summary_partition("fraud", SUMMARY_PARTITIONS),
        )
    stage = merge_stage(cluster)
    snapshot = stage.evaluate()
    assert snapshot.pipeline.predictions[("fraud", "7")] == 14
    assert stage.stats().duplicates == 1
    window = next(m for m in snapshot.models if (m.model, m.model_version) == ("fraud", "7")).windows["1h"]
    assert window.samples == 14


def _labelled(cluster: Cluster, later_labels: bool = True) -> None:
    """Predictions of two models over two partitions, 20 of fraud's labelled in between (and,
    with ``later_labels``, 10 more after)."""
    batches = [
        (PREDICTIONS, 0, records(0, 30)),
        (PREDICTIONS, 1, records(30, 30, ("churn", "1"))),
        ("model-labels", 0, records(0, 20, labels=True)),
        (PREDICTIONS, 1, records(60, 30)),
    ]
    publish(cluster, *batches, *([("model-labels", 0, records(60, 10, labels=True))] if later_labels else []))


def test_join_shards_join_elsewhere_and_their_owner_exports_the_same(profiles, tmp_path):
    """Sharded, the join's rows go to the partitions their join keys route to, the owner gets
    reports; its metrics are those of the owner joining alone."""
    alone = new_cluster(profiles, tmp_path / "alone")
    _labelled(alone)
    expected = scrape(merge_stage(alone))
    assert expected['model_health_labels_joined_total{model="fraud"}'] == 30

    cluster = new_cluster(profiles, tmp_path / "sharded", join_shards=3)
    _labelled(cluster)
    published = cluster.log.messages(SUMMARIES)
    join_keys = {m.key.decode() for m in published if wire.SummaryRange.of(m).kind == wire.JOIN_KIND}
    shards = {routing.join_shard_of(key) for key in join_keys}  # every request key in its model's shard
    assert shards == {(model, shard) for model in ("fraud", "churn") for shard in range(3)}
    assert all(  # no join rows left in the owners' partials
        wire.decode_model_partial(m.value, lambda v: cluster.models[("fraud", v)][1]).labels is None
        for m in published
        if m.key == b"fraud"
    )
    stage = merge_stage(cluster)
    assert scrape(stage) == expected
    reports = [m for m in cluster.log.messages(SUMMARIES) if wire.SummaryRange.of(m).kind == wire.JOINED_KIND]
    assert reports
    for message in reports:  # each at its models' owner
        for report in wire.decode_reports(message.value, lambda m, v: cluster.models[(m, v)][1]):
            assert summary_partition(report.partial.model, SUMMARY_PARTITIONS) == message.partition


def test_join_shard_reports_are_merged_once_however_a_replay_batches_them(profiles, tmp_path):
    """A replay of the shards' partitions makes the same reports for the same offsets, batched
    otherwise (here one summaries message per poll, not three): each report is skipped or merged on
    its own, so nothing counts twice."""
    cluster = new_cluster(profiles, tmp_path, join_shards=3)
    _labelled(cluster)
    first = merge_stage(cluster, tmp_path / "a")
    expected = scrape(first)
    again = merge_stage(cluster, tmp_path / "b", batch=1)  # replays the topic: every report made again
    assert scrape(again) == expected
    assert again.stats().duplicates > 0  # the first replica's reports, read before its own copies
    late = merge_stage(cluster, tmp_path / "c", batch=5)  # reads both copies of every report
    assert scrape(late) == expected and late.stats().duplicates >= again.stats().duplicates


def test_a_join_shard_report_of_another_owner_is_refused_as_misrouted(profiles, tmp_path):
    cluster = new_cluster(profiles, tmp_path, join_shards=3)
    _labelled(cluster)
    merge_stage(cluster)
    report = next(m for m in cluster.log.messages(SUMMARIES) if wire.SummaryRange.of(m).kind == wire.JOINED_KIND)
    elsewhere = 1 - report.partition
    cluster.log.append(SUMMARIES, report.value, report.key, report.headers, partition=elsewhere)
    stage = merge_stage(cluster)
    assert stage.evaluate().pipeline.rejected[(SUMMARIES, "misrouted")] == 1
