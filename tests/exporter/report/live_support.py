"""A live aggregator for the drift-report tests: the real single-mode pipeline over in-memory Kafka.

Records are native NDJSON prediction logs (``docs/wire-formats.md``, the shape
``tests/exporter/aggregator/test_single.py`` sends), labels on the labels topic; the
aggregator's real HTTP app (:func:`exporter.aggregator.service.http_app`) serves
``/metrics`` and the report routes on loopback. The reference holds a hostile category
value in its top categories and a numeric feature named as a script, so the pages must show
both as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from prometheus_client import CollectorRegistry

from detectors.profile import build_profile
from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.inputs import load_models
from exporter.aggregator.readiness import Readiness
from exporter.aggregator.service import http_app
from exporter.aggregator.single import Aggregator
from exporter.config import AggregatorConfig
from exporter.demo.synthetic import drifted_columns, synthetic_table
from exporter.httpd.server import HttpServer
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from tests.support.fake_kafka import FakeConsumer, FakeLog, FakeProducer

HOSTILE = "<script>alert(1)</script>"
SHAPE = {"numeric": 8, "categorical": 3, "drifted": 3}
DRIFTED = set(drifted_columns(**SHAPE))
MODEL, VERSION, WINDOW = "fraud", "7", "1h"
ROWS = 3_000
START = 1_000.0  # event time of the first record; the window's clock is past the last


def with_hostile_values(table: pa.Table, seed: int) -> pa.Table:
    """``cat_2`` holds the hostile value in one row of six, and a numeric column is named as a script."""
    values = table.column("cat_2").to_pylist()
    values = [HOSTILE if i % 6 == 0 else v for i, v in enumerate(values)]
    table = table.set_column(table.column_names.index("cat_2"), "cat_2", pa.array(values, pa.string()))
    return table.append_column(HOSTILE, pa.array(np.random.default_rng(seed).normal(0, 1, table.num_rows)))


def reference_table() -> pa.Table:
    return with_hostile_values(synthetic_table(20_000, seed=1, **SHAPE), seed=5)


def current_table(rows: int = ROWS) -> pa.Table:
    return with_hostile_values(synthetic_table(rows, seed=2, drift=True, **SHAPE), seed=6)


def write_profile(path: Path) -> Path:
    profile = build_profile(
        reference_table(),
        model=MODEL,
        model_version=VERSION,
        created_at=1.7e9,
        prediction="prediction",
        label="label",
    )
    return save_profile(profile, path)


def config(profile: Path, state_dir: Path, token_file: Path | None = None, versions: tuple[str, ...] = (VERSION,)):
    http: dict[str, object] = {"host": "127.0.0.1"}  # the tests' server takes a free port of its own
    if token_file is not None:
        http["token_file"] = str(token_file)
    return AggregatorConfig(
        models=[{"name": MODEL, "version": v, "reference": str(profile)} for v in versions],
        windows=[
            {"name": WINDOW, "bucket_seconds": 60, "buckets": 60},
            {"name": "1d", "bucket_seconds": 3600, "buckets": 24},
        ],
        state={"dir": str(state_dir)},
        allowed_lateness_seconds=3600,
        http=http,
    )


def send_traffic(
    log: FakeLog, table: pa.Table, start: float = START, version: str = VERSION, prefix: str = "r"
) -> None:
    """The table's rows as native NDJSON prediction logs (100 a message), labels after them."""
    rows = table.to_pylist()
    lines = []
    for i, row in enumerate(rows):
        features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v and v is not None}
        record = {
            "model": MODEL,
            "model_version": version,
            "request_id": f"{prefix}{i}",
            "timestamp": start + i * 0.1,
            "features": features,
            "prediction": row["prediction"],
            "latency_ms": 12.0,
            "status": "ok",
        }
        lines.append(json.dumps(record))
    for first in range(0, len(lines), 100):
        log.append("model-predictions", "\n".join(lines[first : first + 100]).encode())
    labels = [
        json.dumps(
            {"model": MODEL, "request_id": f"{prefix}{i}", "label": row["label"], "timestamp": start + i * 0.1 + 5}
        )
        for i, row in enumerate(rows)
    ]
    for first in range(0, len(labels), 500):
        log.append("model-labels", "\n".join(labels[first : first + 500]).encode())


def drain(aggregator: Aggregator) -> None:
    while aggregator.poll_once():
        pass


@dataclass
class LiveAggregator:
    aggregator: Aggregator
    log: FakeLog
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def live_aggregator(
    cfg: AggregatorConfig, log: FakeLog, clock: float = START + ROWS * 0.1 + 60
) -> Iterator[LiveAggregator]:
    """The aggregator on ``log``, drained and evaluated once, with its HTTP app on a free port."""
    aggregator = Aggregator(
        cfg,
        load_models(cfg),
        FakeConsumer(log, batch=7),
        FakeProducer(log),
        BatchDecoder(cfg.kafka.labels_topic),
        clock=lambda: clock,
    )
    aggregator.subscribe()
    drain(aggregator)
    aggregator.evaluate()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(aggregator.snapshot, aggregator.latency))
    readiness = Readiness()
    server = HttpServer(http_app(cfg, registry, readiness, aggregator.snapshot), "127.0.0.1", 0).start()
    try:
        yield LiveAggregator(aggregator, log, server.port)
    finally:
        server.stop()
