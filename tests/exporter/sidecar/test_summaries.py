"""Edge mode: records folded into one summary per bucket, equal to folding them centrally."""

from __future__ import annotations

import json
import math

import pytest

from detectors.profile import build_profile
from exporter.aggregator.scaleout.routing import summary_partition
from exporter.decoders.native_json import decode_native_json
from exporter.demo.synthetic import synthetic_table
from exporter.pipeline.summary_wire import CONTENT_TYPE_HEADER, decode_summary
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.profiles import save_profile
from tests.exporter.sidecar.helpers import (
    SUMMARY_PARTITIONS,
    FakeClock,
    post,
    running,
    sample,
    sidecar_config,
    wait_for,
)

SHAPE = {"numeric": 3, "categorical": 2, "drifted": 2}
BUCKET = 60
T0 = 1_800_000_000.0  # a bucket boundary


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "fraud-7.parquet"
    save_profile(
        build_profile(
            synthetic_table(5_000, seed=1, **SHAPE),
            model="fraud",
            model_version="7",
            created_at=1.7e9,
            prediction="prediction",
            label="label",
        ),
        path,
    )
    return path


def records(rows: int, start: float, seed: int) -> list[dict]:
    out = []
    for i, row in enumerate(synthetic_table(rows, seed=seed, drift=True, **SHAPE).to_pylist()):
        features = {k: v for k, v in row.items() if k not in ("prediction", "label") and v == v}
        out.append(
            {
                "model": "fraud",
                "request_id": f"r{seed}-{i}",
                "timestamp": start + i * 0.01,
                "features": features,
                "prediction": row["prediction"],
                "latency_ms": 5.0,
            }
        )
    return out


def ndjson(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_one_summary_per_bucket_equals_the_central_fold(profile_path):
    from exporter.profiles import load_profile

    profile = load_profile(profile_path)
    clock = FakeClock(T0 + 1)
    config = sidecar_config(
        model={"name": "fraud", "version": "7", "reference": str(profile_path)},
        kafka={"mode": "summaries", "summary_bucket_seconds": BUCKET, "batch_max_seconds": 0.2},
    )
    first, second = records(300, T0 + 1, seed=2), records(200, T0 + 2, seed=3)
    stranger = [{"model": "other", "features": {"x": 1}, "prediction": 1, "timestamp": T0 + 3}]
    with running(config, clock=clock) as (sidecar, log):
        headers = {"Content-Type": "application/x-ndjson"}
        assert post(sidecar, "/v1/predictions", ndjson(first), headers).status_code == 200
        assert post(sidecar, "/v1/predictions", ndjson(second + stranger), headers).status_code == 200
        wait_for(lambda: sample(sidecar, "model_health_ingest_queue_records") == 0, what="records to be folded")
        assert not log.messages("model-health-summaries")  # the bucket is still open
        clock.advance(BUCKET)
        (message,) = wait_for(lambda: log.messages("model-health-summaries"), what="the summary")
        assert message.key == b"fraud" and CONTENT_TYPE_HEADER in message.headers
        # On the partition every producer of fraud's summaries uses (the aggregator's routing).
        assert message.partition == summary_partition("fraud", SUMMARY_PARTITIONS) == 4
        # A late record for the published bucket goes out as a further delta at shutdown.
        late = records(1, T0 + 30, seed=4)
        assert post(sidecar, "/v1/predictions", ndjson(late), headers).status_code == 200
        assert (
            sample(
                sidecar, "model_health_records_rejected_total", topic="model-health-summaries", reason="unknown_model"
            )
            == 1
        )
        assert sample(sidecar, "model_health_predictions_total", model="fraud", model_version="7") == 501
    messages = log.messages("model-health-summaries")
    assert len(messages) == 2
    assert not log.messages("model-predictions")

    decoded = [decode_summary(m.value, profile) for m in messages]
    assert [(h.bucket_start, h.bucket_seconds, h.sequence, h.records) for h, _ in decoded] == [
        (T0, BUCKET, 0, 500),
        (T0, BUCKET, 1, 1),
    ]
    assert decoded[0][0].producer_id == decoded[1][0].producer_id
    central = ModelWindows(profile, [WindowSpec("w", BUCKET, 1)], allowed_lateness=math.inf)
    for table in decode_native_json(ndjson(first + second + late), now=0.0).predictions:
        central.fold_predictions(table.set_column(1, "model_version", table.column("model_version").fill_null("7")))
    (expected,) = central.buckets["w"].values()
    total = decoded[0][1] + decoded[1][1]
    assert total.records == expected.records == 501
    assert all(total.features[name] == expected.features[name] for name in expected.features)
    assert total.prediction == expected.prediction


def test_summaries_mode_needs_a_matching_profile(profile_path, tmp_path):
    from exporter.errors import UserError
    from exporter.sidecar import Sidecar

    config = sidecar_config(
        model={"name": "fraud", "version": "8", "reference": str(profile_path)}, kafka={"mode": "summaries"}
    )
    with pytest.raises(UserError, match="profile of fraud v7, but model is fraud v8"):
        Sidecar(config)
