"""The demo model's KServe logger events: read back by the real decoder and the real sidecar."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.demo.payload_logger import InferenceCall, PayloadLogger, inference_calls
from exporter.demo.traffic import Record, TrafficGenerator
from tests.exporter.sidecar.helpers import running, sidecar_config, wait_for
from tests.support.fake_kafka import FakeLog

MODEL = {"name": "demo-credit", "version": "1", "namespace": "demo"}


def traffic_records(rows: int = 60) -> list[Record]:
    traffic = TrafficGenerator("demo-credit", "1", started_at=0.0, rate=float(rows), drift_after=1e9)
    traffic.tick(1_795_889_000.0)
    records, _ = traffic.tick(1_795_889_001.0)
    # Gaps where the decoders must see missing values: a text one and a number.
    records[3]["features"]["cat_1"] = None
    records[7]["features"]["num_03"] = None
    return records


def decoded_rows(calls: list[InferenceCall]) -> list[dict[str, Any]]:
    joiner = KServeJoiner(1000, 60.0, default_version="1")
    rows: list[dict[str, Any]] = []
    for call in calls:
        for event in (call.request, call.response):
            decoded = decode_kserve(event.body, 1_795_889_002.0, joiner, headers=event.headers)
            assert decoded.rejected == []
            rows += [row for table in decoded.predictions for row in table.to_pylist()]
    return rows


def logged_ids(calls: list[InferenceCall]) -> dict[str, str]:
    return {original: logged for call in calls for original, logged in call.logged_ids.items()}


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_every_record_comes_back_from_its_logged_request_and_response(protocol: str) -> None:
    records = traffic_records()
    counter = itertools.count()
    calls = inference_calls(records, protocol=protocol, call_size=5, new_id=lambda: f"call-{next(counter)}")  # type: ignore[arg-type]
    rows = {row["request_id"]: row for row in decoded_rows(calls)}
    ids = logged_ids(calls)
    assert len(rows) == len(records) == len(ids)
    for record in records:
        row = rows[ids[record["request_id"]]]
        assert (row["model"], row["model_version"], row["model_namespace"], row["status"]) == (
            "demo-credit",
            "1",
            "demo",
            "ok",
        )
        assert row["prediction_score"] == pytest.approx(record["prediction"])
        features = {name: row.get(f"f.{name}") for name in record["features"]}
        assert features == pytest.approx(record["features"])
    # A call's rows share its request time and its latency (response time − request time).
    first = records[0]
    row = rows[ids[first["request_id"]]]
    assert row["timestamp"] == pytest.approx(first["timestamp"], abs=1e-6)
    assert row["latency_ms"] == pytest.approx(first["latency_ms"], abs=0.01)


def test_v1_calls_hold_rows_as_objects_and_ids_follow_kserve() -> None:
    records = traffic_records(12)
    calls = inference_calls(records, protocol="v1", call_size=5, new_id=iter(["a", "b", "c"]).__next__)
    assert [len(call.logged_ids) for call in calls] == [5, 5, 2]
    request = json.loads(calls[0].request.body)
    assert request["instances"][0] == records[0]["features"]
    assert calls[0].logged_ids[records[1]["request_id"]] == "a/1"
    headers = calls[0].request.headers
    assert headers["ce-type"] == "org.kubeflow.serving.inference.request"
    assert calls[0].response.headers["ce-type"] == "org.kubeflow.serving.inference.response"
    assert headers["ce-id"] == calls[0].response.headers["ce-id"] == "a"
    assert headers["ce-inferenceservicename"] == "demo-credit"


def test_v2_sends_one_tensor_per_feature_and_a_row_missing_text_alone() -> None:
    records = traffic_records(10)
    records[8]["features"]["num_00"] = None
    calls = inference_calls(records, protocol="v2", call_size=5, new_id=iter("abcdefg").__next__)
    # Row 3 lacks a text value: it leaves its call of five and goes on its own, as "b".
    assert [sorted(call.logged_ids.values()) for call in calls] == [
        ["a/0", "a/1", "a/2", "a/3"],
        ["b"],
        ["c/0", "c/1", "c/2", "c/3", "c/4"],
    ]
    assert calls[1].logged_ids == {records[3]["request_id"]: "b"}
    alone = json.loads(calls[1].request.body)
    assert "cat_1" not in {tensor["name"] for tensor in alone["inputs"]}
    second = json.loads(calls[2].request.body)
    by_name = {tensor["name"]: tensor for tensor in second["inputs"]}
    assert by_name["cat_0"]["datatype"] == "BYTES" and by_name["num_00"]["datatype"] == "FP64"
    assert by_name["num_00"]["shape"] == [5] and math.isnan(by_name["num_00"]["data"][3])
    response = json.loads(calls[2].response.body)
    assert (response["model_name"], response["model_version"], response["outputs"][0]["datatype"]) == (
        "demo-credit",
        "1",
        "FP64",
    )


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_sidecar_takes_every_call_over_one_connection(protocol: str) -> None:
    records = traffic_records(40)
    with running(sidecar_config(model=MODEL)) as (sidecar, log):
        logger = PayloadLogger("127.0.0.1", sidecar.port, protocol=protocol, call_size=4, namespace="demo")  # type: ignore[arg-type]
        try:
            ids = logger.log(records)
        finally:
            logger.close()
        assert logger.statuses.keys() == {200}
        rows = wait_for(
            lambda: (got := forwarded_rows(log)) and len(got) >= len(records) and got, what="every row forwarded"
        )
    assert sorted(row["request_id"] for row in rows) == sorted(ids.values())
    assert {row["model"] for row in rows} == {"demo-credit"}


def forwarded_rows(log: FakeLog) -> list[dict[str, Any]]:
    messages = [WireMessage(m.value, m.topic, m.headers, m.key) for m in log.messages("model-predictions")]
    return [row for table in decode_batch(messages, 0.0, Joiners()).decoded.predictions for row in table.to_pylist()]
