"""The decoders against the conformance corpus: what KServe and Seldon Core 2 really write.

Each case builds its messages with :mod:`tests.exporter.decoders.corpus` (which names the
upstream file each shape follows) and checks what the decoders and the one model-identity rule
make of them, row by row.
"""

from __future__ import annotations

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.seldon import unframed
from exporter.pipeline.model_versions import ModelIdentity
from exporter.records import Decoded, Reason
from tests.exporter.decoders.corpus import kserve, seldon
from tests.exporter.decoders.corpus.triton import ModelInferRequest as TritonRequest

PREDICTIONS = "model-predictions"
T0 = 1_795_889_160.25
ROW = {"x1": 0.5, "x2": 3.0, "color": "red"}


def decode(events, joiners: Joiners, now: float = T0 + 1, topic: str = PREDICTIONS) -> Decoded:
    messages = [WireMessage(e.value, getattr(e, "topic", topic), e.headers, e.key) for e in events]
    return decode_batch(messages, now, joiners).decoded


def rows(decoded: Decoded) -> list[dict]:
    return [row for table in decoded.predictions for row in table.to_pylist()]


def identities(decoded: Decoded) -> set[tuple]:
    return {(r["model"], r["model_version"], r["deployment_slot"]) for r in rows(decoded)}


HIDDEN = kserve.Agent(service="hidden", namespace="ml")


# --------------------------------------------------------------------------------- KServe


def test_kafkasink_events_of_the_default_endpoint_belong_to_the_only_configured_version():
    events = [
        e
        for i in range(5)
        for e in kserve.inference(HIDDEN, kserve.v1_request([ROW]), kserve.v1_response([0.1 * i]), at=T0 + i)
    ]
    assert all(e.key is None for e in events)  # KafkaSink keys nothing KServe sends
    assert ("ce_endpoint", b"default") in events[0].headers and ("ce_metadata", b"{}") in events[0].headers
    decoded = decode(events, Joiners())
    assert decoded.rejected == [] and len(rows(decoded)) == 5
    assert identities(decoded) == {("hidden", None, "default")}  # no version anywhere: only a slot
    identity = ModelIdentity.of([("hidden", "1", ())])
    assert identity.resolve("hidden", None, "default").key == ("hidden", "1")
    first = rows(decoded)[0]
    assert first["timestamp"] == pytest.approx(T0) and first["latency_ms"] == pytest.approx(12.0, abs=0.001)
    assert (first["f.x1"], first["f.color"], first["prediction_score"], first["status"]) == (0.5, "red", 0.0, "ok")


def test_http_binary_events_decode_like_the_kafkasink_ones():
    over_http = kserve.inference(
        HIDDEN, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0, ce_id="a", kafka=False
    )
    on_kafka = kserve.inference(HIDDEN, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0, ce_id="a")
    assert over_http[0].headers[0] == ("Ce-Id", b"a")
    assert rows(decode(over_http, Joiners())) == rows(decode(on_kafka, Joiners()))


def test_a_canary_endpoint_names_the_version_whose_slots_hold_it():
    canary = kserve.Agent(service="iris", namespace="ml", endpoint="canary")
    default = kserve.Agent(service="iris", namespace="ml", endpoint="default")
    events = [
        *kserve.inference(
            default, kserve.v2_request("input-0", [[1.0, 2.0]]), kserve.v2_response("iris", [0.2]), at=T0
        ),
        *kserve.inference(canary, kserve.v2_request("input-0", [[1.0, 2.0]]), kserve.v2_response("iris", [0.9]), at=T0),
    ]
    decoded = decode(events, Joiners())
    assert identities(decoded) == {("iris", None, "default"), ("iris", None, "canary")}
    identity = ModelIdentity.of([("iris", "1", ("default",)), ("iris", "2", ("canary",))])
    assert identity.resolve("iris", None, "canary").key == ("iris", "2")
    assert identity.resolve("iris", None, "default").key == ("iris", "1")
    unmapped = ModelIdentity.of([("iris", "1", ()), ("iris", "2", ())]).resolve("iris", None, "canary")
    assert unmapped.key is None and "slots: [canary]" in unmapped.problem
    stray = ModelIdentity.of([("iris", "2", ("canary",))]).resolve("iris", None, "default")
    assert stray.key is None and "'default' is not mapped" in stray.problem


def test_requests_only_fold_at_once_with_no_serving_error():
    agent = kserve.Agent(service="hidden", namespace="ml", log_mode="request")
    events = [
        e
        for i in range(3)
        for e in kserve.inference(agent, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0 + i)
    ]
    assert {dict(e.headers)["ce_type"] for e in events} == {kserve.REQUEST.encode()}
    joiners = Joiners()
    joiners.configure({"hidden": "request"})
    decoded = decode(events, joiners)
    assert [r["status"] for r in rows(decoded)] == [None, None, None]  # not ok, not an error: unknown
    assert [r["prediction_score"] for r in rows(decoded)] == [None, None, None]
    assert joiners.kserve.pending == 0


def test_auto_mode_learns_requests_only_after_one_ttl_and_then_folds_at_once():
    agent = kserve.Agent(service="hidden", namespace="ml", log_mode="request")
    joiners = Joiners()
    first = kserve.inference(agent, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0)
    assert rows(decode(first, joiners, now=T0)) == []  # waits for a response, as in mode all
    expired = joiners.expire(T0 + 61)
    assert [r["status"] for r in rows(expired)] == [None]  # learned: not a no_response error
    later = kserve.inference(agent, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0 + 70)
    assert [r["status"] for r in rows(decode(later, joiners, now=T0 + 70))] == [None]  # at once now
    restored = Joiners()
    restored.import_state(joiners.export_state())  # what was learned is checkpointed
    again = kserve.inference(agent, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0 + 80)
    assert len(rows(decode(again, restored, now=T0 + 80))) == 1


def test_responses_only_give_prediction_rows_at_once():
    agent = kserve.Agent(service="hidden", namespace="ml", log_mode="response")
    joiners = Joiners()
    joiners.configure({"hidden": "response"})
    events = kserve.inference(agent, kserve.v1_request([ROW]), kserve.v1_response([0.7, 0.2]), at=T0)
    [first, second] = rows(decode(events, joiners))
    assert (first["prediction_score"], first["status"], first.get("f.x1")) == (0.7, "ok", None)
    assert second["request_id"].endswith("/1")


def test_metadata_headers_give_the_request_id_and_segment_features():
    agent = kserve.Agent(service="hidden", namespace="ml", metadata_headers=("X-Request-Id", "X-Tenant"))
    events = kserve.inference(
        agent,
        kserve.v1_request([ROW]),
        kserve.v1_response([1]),
        at=T0,
        client_headers={"X-Request-Id": "order-77", "X-Tenant": "acme", "Authorization": "Bearer x"},
    )
    assert dict(events[0].headers)["ce_metadata"] == b'{"X-Request-Id":["order-77"],"X-Tenant":["acme"]}'
    [row] = rows(decode(events, Joiners()))
    assert row["request_id"] == "order-77"  # what a label pipeline knows, not the random ce-id
    assert row["f.header.x-tenant"] == "acme"


def test_logged_error_responses_count_as_errors_with_the_request_features():
    events = kserve.inference(
        HIDDEN, kserve.v1_request([ROW]), {"error": "bad input"}, at=T0, status=422, log_all_responses=True
    )
    assert dict(events[1].headers)["ce_statuscode"] == b"422"
    decoded = decode(events, Joiners())
    assert decoded.rejected == []  # an error answer is not a malformed message
    [row] = rows(decoded)
    assert (row["status"], row["prediction_score"], row["f.x1"]) == ("http_422", None, 0.5)
    ok = kserve.inference(HIDDEN, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0, log_all_responses=True)
    assert [r["status"] for r in rows(decode(ok, Joiners()))] == ["ok"]


def test_without_log_all_responses_a_failed_call_logs_only_its_request():
    events = kserve.inference(HIDDEN, kserve.v1_request([ROW]), {"error": "boom"}, at=T0, status=500)
    assert len(events) == 1  # handler.go logs a response only for 200


def test_a_copy_of_an_event_is_counted_once():
    events = kserve.inference(HIDDEN, kserve.v1_request([ROW]), kserve.v1_response([1]), at=T0)
    joiners = Joiners()
    decoded = decode([events[0], events[0], events[1], events[1]], joiners)  # a producer retrying each
    assert len(rows(decoded)) == 1 and decoded.duplicates == 2 and decoded.rejected == []
    later = decode([events[1]], joiners, now=T0 + 5)  # long after the pair completed
    assert rows(later) == [] and later.duplicates == 1 and later.rejected == []


# --------------------------------------------------------------------------------- Seldon Core 2


@pytest.mark.parametrize("release", ["2.9", "2.8", "2.7"])
def test_seldon_model_topics_pair_by_request_id_whatever_the_key(release):
    gateway = seldon.Gateway(release=release)
    written = gateway.model_inference("iris", "cv1k9qkd0j9s73b2nrsg", [[6.8, 2.8], [6.0, 3.4]], [0.9, 0.1])
    decoded = decode(written, Joiners())
    assert decoded.rejected == []
    [first, second] = rows(decoded)
    assert first["request_id"] == "cv1k9qkd0j9s73b2nrsg/0"  # x-request-id, not "0.iris.cv1k…"
    assert (first["model"], first["model_namespace"]) == ("iris", "seldon-mesh")
    assert first["model_version"] is None  # "iris_1" answering "1": Seldon's pin, not the user's version
    assert (first["f.predict_0"], second["prediction_score"]) == (pytest.approx(6.8), 0.1)


@pytest.mark.parametrize("raw", [False, True])
def test_schema_registry_framing_decodes_like_plain_protobuf(raw):
    rows_in = [[5.1, 3.5], [4.9, 3.0]]
    plain = seldon.Gateway().model_inference("iris", "r1", rows_in, [0.3, 0.6], raw=raw)
    framed = seldon.Gateway(schema_ids=(101, 102)).model_inference("iris", "r1", rows_in, [0.3, 0.6], raw=raw)
    assert framed[0].value[:6] == b"\x00\x00\x00\x00\x65\x00"  # magic, schema 101, message index [0]
    assert rows(decode(framed, Joiners())) == rows(decode(plain, Joiners()))


def test_framing_with_a_nested_message_index_path():
    message = seldon.request_message([[1.0, 2.0]])
    framed = seldon.confluent_framed(message, 7, indexes=(1, 2))
    assert framed[5:8] == b"\x04\x02\x04"  # zig-zag varints: count 2, then 1, 2
    assert unframed(framed) == message


def test_seldon_pipeline_topics_are_read_like_model_topics():
    written = seldon.Gateway().pipeline_inference("fraud-pipe", "p-1", [[1.0, 2.0]], [0.8])
    assert [w.topic for w in written] == [
        "seldon.seldon-mesh.pipeline.fraud-pipe.inputs",
        "seldon.seldon-mesh.pipeline.fraud-pipe.outputs",
    ]
    assert dict(written[0].headers)["pipeline"] == b"fraud-pipe"
    [row] = rows(decode(written, Joiners()))
    assert (row["model"], row["request_id"], row["prediction_score"]) == ("fraud-pipe", "p-1", 0.8)


def test_a_bad_frame_is_refused_as_invalid_protobuf():
    [inputs, _] = seldon.Gateway().model_inference("iris", "r1", [[1.0]], [0.5])
    decoded = decode([seldon.Written(inputs.topic, b"\x00\x00\x00", inputs.key, inputs.headers)], Joiners())
    assert [r.reason for r in decoded.rejected] == [Reason.INVALID_PROTOBUF]


def test_triton_and_our_classes_agree_on_the_wire():
    from exporter.decoders.oip_protobuf import ModelInferRequest

    ours = ModelInferRequest.FromString(seldon.request_message([[1.5, 2.5]], raw=True))
    theirs = TritonRequest.FromString(ours.SerializeToString())
    assert theirs.inputs[0].name == "predict" and list(theirs.inputs[0].shape) == [1, 2]
    assert theirs.raw_input_contents[0] == ours.raw_input_contents[0]
