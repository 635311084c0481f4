from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from exporter.decoders.detect import Joiners, WireMessage, decode_batch
from exporter.decoders.join_state import export_joiner, import_joiner
from exporter.decoders.joiner import Side
from exporter.decoders.kserve import KServeJoiner, decode_kserve
from exporter.decoders.seldon import SeldonJoiner, decode_seldon
from exporter.records import Reason
from tests.exporter.decoders.messages import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    kserve_headers,
    seldon_request,
    seldon_response,
)

INPUTS = "seldon.prod.model.iris.inputs"
OUTPUTS = "seldon.prod.model.iris.outputs"


def test_waiting_halves_come_back_exactly():
    joiner = KServeJoiner()
    body = b'{"instances": [{"x": NaN, "city": "K\\u00f6ln", "tags": [1, 2]}]}'
    decode_kserve(body, 100.0, joiner, headers=kserve_headers("a", REQUEST_TYPE))
    decode_kserve(b'{"predictions": [1]}', 101.0, joiner, headers=kserve_headers("b", RESPONSE_TYPE))
    decode_kserve(b'{"instances": [[1]]}', 102.0, joiner, headers=kserve_headers("c", REQUEST_TYPE))
    decode_kserve(b'{"predictions": [0]}', 102.0, joiner, headers=kserve_headers("c", RESPONSE_TYPE))
    documents = export_joiner(joiner)
    assert all(isinstance(json.loads(text), dict) for text in documents)

    restored = KServeJoiner()
    import_joiner(restored, documents)
    before, after = joiner.halves.waiting(), restored.halves.waiting()
    assert [(w.key, w.side, w.since) for w in after] == [(w.key, w.side, w.since) for w in before]
    request = after[0].half
    assert math.isnan(request.features[0]["x"]) and request.features[0]["city"] == "Köln"
    assert request.payload == body and request.headers == before[0].half.headers
    assert replace(after[0].half, features=None) == replace(before[0].half, features=None)  # NaN != NaN
    assert after[1].half == before[1].half
    assert restored.halves.counts() == joiner.halves.counts() and restored.joined == 1


def test_a_restored_half_pairs_and_its_ttl_keeps_running():
    joiner = SeldonJoiner(ttl_seconds=60.0)
    decode_seldon(seldon_request([[1.0, 2.0]]), INPUTS, 10.0, joiner, key=b"r1", record_time=5.0)
    decode_seldon(seldon_request([[3.0, 4.0]]), INPUTS, 10.0, joiner, key=b"r2", record_time=5.0)
    restored = SeldonJoiner(ttl_seconds=60.0)
    import_joiner(restored, export_joiner(joiner))

    paired = decode_seldon(seldon_response([1]), OUTPUTS, 20.0, restored, key=b"r1", record_time=5.5)
    [row] = paired.predictions[0].to_pylist()
    assert row["status"] == "ok" and row["latency_ms"] == pytest.approx(500.0) and row["f.predict_0"] == 1.0
    # r2 arrived at 10.0: past the TTL at 70.0, not 60 s after the restore.
    expired = restored.expire(70.0)
    assert [r["request_id"] for r in expired.predictions[0].to_pylist()] == ["r2"]
    assert expired.predictions[0].column("status").to_pylist() == ["no_response"]


def test_an_unmatched_response_is_dead_lettered_byte_for_byte_after_a_restore():
    joiners = Joiners()
    joiners.seldon.configure({"iris": "all"})
    value = seldon_response([2])
    decode_batch([WireMessage(value, OUTPUTS, (("x-trace", b"\x00\xff"),), key=b"lonely")], 0.0, joiners)
    restored = Joiners()
    restored.seldon.configure({"iris": "all"})
    restored.import_state(joiners.export_state())
    [refused] = restored.expire(61.0).rejected
    assert refused.reason is Reason.UNMATCHED_RESPONSE and refused.payload == value
    assert refused.headers == (("x-trace", b"\x00\xff"),)


def test_an_unknown_state_version_is_refused():
    with pytest.raises(ValueError, match="version 99"):
        import_joiner(KServeJoiner(), [json.dumps({"version": 99, "counts": {}})])


def test_nothing_saved_leaves_the_joiner_as_it_is():
    joiner = KServeJoiner()
    import_joiner(joiner, [])
    assert joiner.pending == 0


def test_settled_ids_and_learned_modes_come_back_with_the_state():
    joiner = KServeJoiner()
    request = (b'{"instances": [[1.0]]}', kserve_headers("d", REQUEST_TYPE))
    decode_kserve(request[0], 100.0, joiner, headers=request[1])
    decode_kserve(b'{"predictions": [1]}', 100.0, joiner, headers=kserve_headers("d", RESPONSE_TYPE))
    joiner.learned[("prod", "other")] = Side.REQUEST
    restored = KServeJoiner()
    import_joiner(restored, export_joiner(joiner))
    again = decode_kserve(request[0], 101.0, restored, headers=request[1])  # a copy after a restart
    assert again.predictions == [] and again.duplicates == 1 and restored.pending == 0
    assert restored.learned == {("prod", "other"): Side.REQUEST}
    assert restored.seen[("prod", "sklearn-iris")] == {Side.REQUEST, Side.RESPONSE}


def test_a_half_saved_before_the_slot_column_reads_its_endpoint_as_the_slot():
    joiner = KServeJoiner()
    decode_kserve(b'{"instances": [[1.0]]}', 100.0, joiner, headers=kserve_headers("e", REQUEST_TYPE))
    [header, half] = export_joiner(joiner)
    old = json.loads(half)
    old["fallback_version"] = old.pop("deployment_slot")
    del old["status"]
    restored = KServeJoiner()
    import_joiner(restored, [json.dumps({"version": 1, "counts": {}}), json.dumps(old)])
    [waiting] = restored.halves.waiting()
    assert waiting.half.deployment_slot == "default" and waiting.half.status is None


def test_a_waiting_response_keeps_its_probability_vectors():
    joiner = KServeJoiner()
    decode_kserve(b'{"predictions": [[0.1, 0.7, 0.2]]}', 101.0, joiner, headers=kserve_headers("v", RESPONSE_TYPE))
    restored = KServeJoiner()
    import_joiner(restored, export_joiner(joiner))
    [waiting] = restored.halves.waiting()
    assert waiting.half.probabilities == [(0.1, 0.7, 0.2)] and waiting.half == joiner.halves.waiting()[0].half
    paired = decode_kserve(b'{"instances": [[1]]}', 102.0, restored, headers=kserve_headers("v", REQUEST_TYPE))
    [row] = paired.predictions[0].to_pylist()
    assert (row["prediction_class"], row["p.0"], row["p.1"], row["p.2"]) == ("1", 0.1, 0.7, 0.2)
