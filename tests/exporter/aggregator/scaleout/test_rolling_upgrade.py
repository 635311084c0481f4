"""A rolling upgrade in scale-out: replicas writing different wire formats side by side.

Every replica reads every format of ``wire.WIRE_FORMATS`` and writes ``kafka.summaries_format``;
the new build keeps writing what the old one reads until no old replica is left. Here replicas
writing formats 1, 2 and 3 run over the same traffic, killed and restarted in turn, and
together they export what one single-mode process exports."""

from __future__ import annotations

import pytest

from exporter.aggregator.scaleout import wire
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


def test_replicas_writing_formats_1_2_and_3_export_what_one_process_exports(profiles, tmp_path):
    traffic = make_traffic(ROWS, BASE)
    expected = single_run(make_config(profiles, tmp_path / "single"), traffic, NOW)
    log = FakeLog()
    cluster = Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))
    feeder = Feeder(log, traffic)

    def start(name: str, fmt: int):  # noqa: ANN202
        replica = cluster.start(tmp_path / name)
        replica.partial.format_version = fmt  # as kafka.summaries_format sets it
        return replica

    old, middle, new = start("old", 1), start("middle", 2), start("new", 3)
    for _ in range(4):
        feeder.feed(len(feeder.pending) // 4 or 1)
        for replica in list(cluster.replicas):
            replica.step(5)
    old.kill()  # the last replica of the oldest build goes; its partitions move on
    start("new-2", 2)
    for _ in range(2):
        feeder.feed(len(feeder.pending) // 3 or 1)
        for replica in list(cluster.replicas):
            replica.step(5)
    middle.kill()
    start("new-3", 3)
    feeder.feed()
    cluster.drain()
    got = combine([exposition(r.merge.evaluate(), r.merge.latency()) for r in cluster.replicas])
    assert_same_metrics(exposition(expected.snapshot(), expected.latency()), got)
    formats = {wire.SummaryRange.of(m).format for m in log.messages(SUMMARIES) if wire.SummaryRange.of(m)}
    assert formats == {1, 2, 3}
    assert new in cluster.replicas


def test_a_format_this_build_does_not_read_is_refused_and_counted():
    message_headers = wire.SummaryRange(wire.MODEL_KIND, "fraud", "t", 0, 0, 1, 1.0, format=1).headers()
    unknown = str(wire.FORMAT_VERSION + 1).encode()
    future = tuple((k, unknown if k == wire.FORMAT_HEADER else v) for k, v in message_headers)
    from exporter.kafka import Message

    with pytest.raises(wire.WireError, match="not one this build reads"):
        wire.SummaryRange.of(Message(SUMMARIES, 0, 0, b"fraud", b"", future))
