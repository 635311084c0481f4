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


def test_any_replica_answers_a_report_url_by_asking_the_owner(tmp_path):
    """With ``http.peers``, a replica asked for a model another replica owns fetches the owner's
    page (real HTTP servers on loopback); a forwarded request is never forwarded again."""
    import json
    import urllib.error
    import urllib.request

    from prometheus_client import CollectorRegistry

    from exporter.aggregator.readiness import Readiness
    from exporter.aggregator.service import http_app
    from exporter.httpd.server import HttpServer
    from exporter.kafka.embedded import free_port

    profiles = write_profiles(tmp_path / "profiles")
    log = FakeLog()
    cluster = Cluster(make_config(profiles, tmp_path / "state"), log, Clock(NOW))
    fill(log, make_traffic(ROWS, BASE))
    for i in range(2):
        cluster.start(tmp_path / f"r{i}")
    cluster.drain()
    snapshots = [replica.merge.evaluate() for replica in cluster.replicas]
    ports = [free_port(), free_port()]
    servers = []
    for i, snapshot in enumerate(snapshots):
        config = cluster.config.model_copy(
            update={"http": cluster.config.http.model_copy(update={"peers": f"127.0.0.1:{ports[1 - i]}"})}
        )
        app = http_app(config, CollectorRegistry(), Readiness(), lambda s=snapshot: s)
        servers.append(HttpServer(app, "127.0.0.1", ports[i]).start())
    try:
        owned = [{m.model for m in s.models} for s in snapshots]
        model = next(iter(owned[1] - owned[0]))
        version = next(m.model_version for m in snapshots[1].models if m.model == model)

        def get(port: int, path: str, forwarded: bool = False) -> tuple[int, bytes]:
            headers = {"X-Model-Health-Forwarded": "1"} if forwarded else {}
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers), timeout=10
                ) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        api = f"/api/v1/drift?model={model}&version={version}&window=1h"
        direct = get(ports[1], api)
        assert direct[0] == 200
        assert get(ports[0], api) == direct  # the non-owner hands back the owner's answer
        assert json.loads(get(ports[0], api)[1])["model"] == model
        status, page = get(ports[0], f"/report/{model}?version={version}&window=1h")
        assert status == 200 and b"<html" in page.lower()
        assert get(ports[0], api, forwarded=True)[0] == 404  # a forwarded request is not forwarded again
        assert get(ports[0], "/api/v1/drift?model=ghost")[0] == 404  # nobody owns it
    finally:
        for server in servers:
            server.stop()
