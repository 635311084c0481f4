"""``/metrics`` latency with and without a drift report rendering, side by side in one run.

    python benchmarks/report_scrape.py [--models 10] [--features 100] [--seconds 3] [--rounds 4]

A child process serves the aggregator's real HTTP surface (:func:`exporter.aggregator.service.http_app`:
``/metrics`` from the :class:`~exporter.aggregator.collector.SnapshotCollector`, the report routes)
over a snapshot of ``--models`` evaluated models of ``--features`` features each (90 % numeric,
10 % categorical, a few drifted), one hour window full. This process scrapes ``/metrics`` back
to back for ``--seconds`` in each scenario, the scenarios interleaved for ``--rounds`` rounds
(so load from elsewhere on the machine falls on all of them alike):

* ``scrapes alone`` — nothing else runs;
* ``+ report renders`` — a second client (its own process) loads ``/report/<model>`` back to back, every load
  a full render (the server swaps in a copy of the snapshot before each, so the page cache
  never answers): the render yields to scrapes between charts;
* ``+ report renders, no yielding`` — the same, with the render's yielding turned off
  (what the scrape would see without :class:`~exporter.report.routes.ScrapeGate`);
* ``+ a second scraper`` — a second client scraping ``/metrics`` too (any concurrent request).

Printed per scenario: scrape latency percentiles, the ratio of each to ``scrapes alone``,
scrapes and report loads per second. First, what keeping the window sums in the snapshot
costs: the memory one model's evaluation result holds (tracemalloc) with its
``WindowSummaries`` and without, for a ``--features`` model with a 1 h (60 × 1 min) and a
1 d (24 × 1 h) window. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL_VERSION = "7"


def build_snapshot(models: int, features: int):  # -> Snapshot
    import numpy as np

    from detectors.decision import DriftRule
    from detectors.profile import build_profile
    from exporter.demo.synthetic import prediction_log, synthetic_table
    from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
    from exporter.pipeline.snapshot import Snapshot
    from exporter.pipeline.windows import ModelWindows, WindowSpec

    categorical = max(1, features // 10)
    shape = {"numeric": features - categorical, "categorical": categorical, "drifted": 8}
    reference = synthetic_table(20_000, seed=1, **shape)
    current = synthetic_table(6_000, seed=2, drift=True, **shape)
    now = 3_600.0
    results = []
    for index in range(models):
        name = f"model-{index:02d}"
        profile = build_profile(
            reference, model=name, model_version=MODEL_VERSION, created_at=0.0, prediction="prediction", label="label"
        )
        store = ModelWindows(profile, [WindowSpec("1h", 60, 60)], allowed_lateness=60)
        store.fold_predictions(prediction_log(current, name, MODEL_VERSION, np.linspace(1.0, now, current.num_rows)))
        results.append(evaluate_model(ModelIdentity(name, MODEL_VERSION), store, lambda f: DriftRule(), now))
    return Snapshot(evaluated_at=now, models=tuple(results))


def snapshot_memory(features: int) -> tuple[float, float]:
    """Bytes one model's evaluation result holds with and without the window summaries."""
    import dataclasses
    import gc
    import tracemalloc

    import numpy as np

    from detectors.decision import DriftRule
    from detectors.profile import build_profile
    from exporter.demo.synthetic import prediction_log, synthetic_table
    from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
    from exporter.pipeline.windows import ModelWindows, WindowSpec

    categorical = max(1, features // 10)
    shape = {"numeric": features - categorical, "categorical": categorical, "drifted": 8}
    profile = build_profile(
        synthetic_table(20_000, seed=1, **shape), model="m", model_version="1", created_at=0.0, prediction="prediction"
    )
    store = ModelWindows(profile, [WindowSpec("1h", 60, 60), WindowSpec("1d", 3600, 24)], allowed_lateness=60)
    day = 86_400.0
    store.fold_predictions(
        prediction_log(synthetic_table(20_000, seed=2, **shape), "m", "1", np.linspace(0, day, 20_000))
    )
    gc.collect()
    tracemalloc.start()
    result = evaluate_model(ModelIdentity("m", "1"), store, lambda f: DriftRule(), now=day)
    gc.collect()
    with_summaries = tracemalloc.get_traced_memory()[0]
    windows = {name: dataclasses.replace(w, summaries=None) for name, w in result.windows.items()}
    result = dataclasses.replace(result, windows=windows)
    gc.collect()
    without = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return with_summaries, without


def serve(models: int, features: int, replies: multiprocessing.Queue, control: multiprocessing.Queue) -> None:
    """The child: the aggregator's HTTP app over a fixed snapshot until told to stop."""
    from prometheus_client import CollectorRegistry

    from exporter import __version__
    from exporter.aggregator.collector import SnapshotCollector
    from exporter.aggregator.readiness import Readiness
    from exporter.aggregator.service import http_app
    from exporter.config import AggregatorConfig
    from exporter.exposition import BuildInfoCollector
    from exporter.httpd.server import HttpServer
    from exporter.report.routes import ScrapeGate

    snapshot = build_snapshot(models, features)
    state = {"fresh": False}

    def current():  # -> Snapshot
        # A copy per call while "fresh" is on: the report cache never matches, every load renders.
        return dataclasses.replace(snapshot) if state["fresh"] else snapshot

    config = AggregatorConfig(models=[{"name": "x", "version": "1", "reference": "unused"}])
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector(__version__))
    registry.register(SnapshotCollector(lambda: snapshot))
    gate = ScrapeGate()
    server = HttpServer(http_app(config, registry, Readiness(), current, gate), "127.0.0.1", 0).start()
    replies.put(server.port)
    while True:
        command = control.get()
        if command == "stop":
            break
        state["fresh"] = command in ("render", "render-no-yield")
        gate.max_wait_s = 0.0 if command == "render-no-yield" else ScrapeGate.MAX_WAIT_S
        replies.put(command)
    server.stop()


def fetch(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - began


def load_back_to_back(url: str, stop, counts) -> None:  # in its own process
    loads = 0
    while not stop.is_set():
        fetch(url)
        loads += 1
    counts.put(loads)


def scenario(context, port: int, seconds: float, other: str | None) -> tuple[list[float], int]:
    """Scrape back to back for ``seconds``; meanwhile another process fetches ``other`` (a
    path) back to back, so the two clients never share this process's GIL."""
    stop, counts = context.Event(), context.Queue()
    loader = None
    if other:
        loader = context.Process(target=load_back_to_back, args=(f"http://127.0.0.1:{port}{other}", stop, counts))
        loader.start()
        time.sleep(1.0)  # the other client is in full swing before the first scrape
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        latencies.append(fetch(f"http://127.0.0.1:{port}/metrics"))
    stop.set()
    loads = 0
    if loader is not None:
        loads = counts.get(timeout=60)
        loader.join()
    return latencies, loads


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    held, lean = snapshot_memory(args.features)
    print(
        f"one {args.features}-feature model's evaluation result (1 h and 1 d windows): {held / 1e6:.2f} MB with its "
        f"window summaries, {lean / 1e6:.2f} MB without ({(held - lean) / 1e6:.2f} MB kept for the report)"
    )
    context = multiprocessing.get_context("spawn")
    replies, control = context.Queue(), context.Queue()
    child = context.Process(target=serve, args=(args.models, args.features, replies, control), daemon=True)
    child.start()
    port = replies.get(timeout=300)
    page = f"/report/model-00?version={MODEL_VERSION}&window=1h"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        body = response.read()
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}") as response:
        page_bytes = len(response.read())
    print(
        f"{args.models} models × {args.features} features; /metrics: {series:,} series, {len(body) / 1e6:.2f} MB; "
        f"one report page: {page_bytes / 1e6:.2f} MB"
    )
    scenarios = [
        ("scrapes alone", "idle", None),
        ("+ report renders (yielding to scrapes)", "render", page),
        ("+ report renders, no yielding", "render-no-yield", page),
        ("+ a second scraper", "idle", "/metrics"),
    ]
    measured: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name, _, _ in scenarios}
    for _ in range(args.rounds):
        for name, command, other in scenarios:
            control.put(command)
            assert replies.get(timeout=30) == command
            fetch(f"http://127.0.0.1:{port}/metrics")  # warm
            latencies, loads = scenario(context, port, args.seconds, other)
            measured[name][0].extend(latencies)
            measured[name][1].append(loads)
    rows = [(name, latencies, sum(loads)) for name, (latencies, loads) in measured.items()]
    control.put("stop")
    child.join(timeout=30)
    base = statistics.median(rows[0][1])
    print(
        "\n| scenario | scrapes | p50 ms | p90 ms | p99 ms | max ms | p50 vs alone | other loads/s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for name, latencies, loads in rows:
        p50 = statistics.median(latencies)
        print(
            f"| {name} | {len(latencies)} | {p50 * 1e3:.1f} | {percentile(latencies, 0.9) * 1e3:.1f} | "
            f"{percentile(latencies, 0.99) * 1e3:.1f} | {max(latencies) * 1e3:.1f} | {p50 / base:.2f}× | "
            f"{loads / (args.seconds * args.rounds):.1f} |"
        )


if __name__ == "__main__":
    main()
