import math

from exporter.demo.traffic import Shape, TrafficGenerator


def test_rate_is_exact_over_uneven_ticks() -> None:
    traffic = TrafficGenerator("m", "1", started_at=0.0, rate=100.0, drift_after=1e9)
    traffic.tick(0.0)
    sent = sum(len(traffic.tick(t)[0]) for t in (0.33, 0.5, 1.37, 2.0, 3.999, 5.0))
    assert sent == 500


def test_labels_follow_their_predictions_after_the_delay() -> None:
    traffic = TrafficGenerator("m", "1", started_at=0.0, rate=10.0, label_delay=2.0)
    traffic.tick(0.0)
    predictions, labels = traffic.tick(1.0)
    assert len(predictions) == 10 and labels == []
    assert traffic.tick(2.5)[1] == []
    _, due = traffic.tick(3.0)
    assert [label["request_id"] for label in due] == [p["request_id"] for p in predictions]
    assert {label["label"] for label in due} <= {0, 1}


def test_records_follow_the_native_json_contract_and_drift_on_schedule() -> None:
    shape = Shape(numeric=4, categorical=2, drifted=2)
    traffic = TrafficGenerator("m", "1", started_at=0.0, rate=2000.0, drift_after=5.0, shape=shape)
    traffic.tick(0.0)
    before, _ = traffic.tick(1.0)
    traffic.tick(5.0)
    after, _ = traffic.tick(6.0)
    record = before[0]
    assert set(record) == {
        "model",
        "model_version",
        "request_id",
        "timestamp",
        "features",
        "prediction",
        "latency_ms",
        "status",
    }
    assert set(record["features"]) == {"num_00", "num_01", "num_02", "num_03", "cat_0", "cat_1"}
    assert all(
        v is None or not (isinstance(v, float) and math.isnan(v)) for r in before for v in r["features"].values()
    )
    mean = lambda rows: sum(r["features"]["num_00"] for r in rows if r["features"]["num_00"] is not None) / len(rows)  # noqa: E731
    assert not traffic.drifting(4.9) and traffic.drifting(5.0)
    assert shape.drifted_columns() == ["num_00", "num_01"]
    assert mean(after) - mean(before) > 0.3  # num_00 moves by half a standard deviation
