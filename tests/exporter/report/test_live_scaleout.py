"""The live drift report in scale-out: each model's owner serves the report single mode would.

Replicas over the in-memory Kafka of the scale-out tests (``tests/exporter/aggregator/scaleout``):
every model version and window that a replica owns gives the same report, to the value, as
the single-process run of the same traffic; a replica that does not own a model answers 404
saying that another replica serves it.
"""

from __future__ import annotations

import pytest

from exporter.report.live import NotFound, find_window, window_report
from tests.exporter.aggregator.scaleout.harness import Clock, Cluster, fill, make_config, single_run
from tests.exporter.aggregator.scaleout.traffic import WINDOWS, make_traffic, write_profiles
from tests.support.fake_kafka import FakeLog

ROWS = 300
BASE = 1_000.0
NOW = BASE + ROWS + 50


def _reports(snapshot) -> dict[tuple[str, str, str], dict]:
    return {
        (m.model, m.model_version, window): window_report(
            find_window(snapshot, m.model, m.model_version, window)
        ).as_dict()
        for m in snapshot.models
        for window in m.windows
    }


def test_each_owner_serves_the_report_single_mode_would(tmp_path):
    profiles = write_profiles(tmp_path / "profiles")
    traffic = make_traffic(ROWS, BASE)
    single = single_run(make_config(profiles, tmp_path / "single"), traffic, NOW).snapshot()
    log = FakeLog()
    cluster = Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))
    fill(log, traffic)
    for i in range(2):
        cluster.start(tmp_path / f"r{i}")
    cluster.drain()
    expected = _reports(single)
    assert len(expected) == len(single.models) * len(WINDOWS)
    served: dict[tuple[str, str, str], dict] = {}
    for replica in cluster.replicas:
        snapshot = replica.merge.evaluate()
        served.update(_reports(snapshot))
        owned = {m.model for m in snapshot.models}
        for model in {m.model for m in single.models} - owned:
            with pytest.raises(NotFound, match="served by the replica that owns it"):
                find_window(snapshot, model, None, None)
    assert served == expected
    assert any(feature["drift"] for report in served.values() for feature in report["features"].values())
