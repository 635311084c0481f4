"""Every kind of bad request gets its 4xx and its count, and the sidecar keeps serving."""

from __future__ import annotations

import http.client
import json
import socket

import httpx
import pytest

from tests.exporter.decoders.messages import REQUEST_TYPE, kserve_headers, native_record, structured_event
from tests.exporter.sidecar.helpers import metrics, post, post_json, running, sidecar_config, url, wait_for

LIMIT = 4096


@pytest.fixture(scope="module")
def sidecar():
    with running(sidecar_config(http={"max_body_bytes": LIMIT})) as (running_sidecar, log):
        yield running_sidecar


def refused(sidecar) -> dict[str, float]:
    prefix = 'model_health_ingest_requests_rejected_total{reason="'
    return {key[len(prefix) : -2]: value for key, value in metrics(sidecar).items() if key.startswith(prefix)}


def raw_request(sidecar, data: bytes) -> bytes:
    """Send bytes as they are and read the answer until the server closes or answers fully."""
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as conn:
        conn.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_each_bad_request_gets_its_status_and_its_count(sidecar):
    before = refused(sidecar)
    cases = [
        # (method, path, body, headers, status, reason)
        ("GET", "/", b"", {}, 405, "method"),
        ("PUT", "/v1/predictions", b"{}", {"Content-Type": "application/json"}, 405, "method"),
        ("GET", "/nope", b"", {}, 404, "not_found"),
        ("POST", "/v1/predict", b"{}", {"Content-Type": "application/json"}, 404, "not_found"),
        ("POST", "/metrics", b"", {}, 405, "method"),
        (
            "POST",
            "/v1/predictions",
            b"a=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/", b"{}", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        (
            "POST",
            "/",
            b"\x00\x01",
            {**kserve_headers("x", REQUEST_TYPE), "Content-Type": "application/octet-stream"},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/v1/predictions", b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        ("POST", "/v1/predictions", b"", {"Content-Type": "application/json"}, 400, "bad_body"),
        (
            "POST",
            "/v1/predictions",
            json.dumps({"features": {"a": 1}}).encode(),
            {"Content-Type": "application/json"},
            400,
            "missing_field",
        ),
        ("POST", "/", b"{not json", kserve_headers("x", REQUEST_TYPE), 400, "invalid_json"),
        ("POST", "/v1/predictions", b"x" * (LIMIT + 1), {"Content-Type": "application/json"}, 413, "too_large"),
        ("POST", "/", b"x" * (LIMIT + 1), kserve_headers("x", REQUEST_TYPE), 413, "too_large"),
    ]
    expected: dict[str, int] = {}
    for method, path, body, headers, status, reason in cases:
        reply = httpx.request(method, url(sidecar, path), content=body, headers=headers, timeout=10)
        assert reply.status_code == status, (method, path, reply.text)
        expected[reason] = expected.get(reason, 0) + 1
    after = refused(sidecar)
    assert {reason: after.get(reason, 0) - before.get(reason, 0) for reason in expected} == expected
    # ... and it still takes good records.
    assert post_json(sidecar, "/v1/predictions", native_record(1)).status_code == 200


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_cloudevent_without_id_is_400(sidecar, mode):
    if mode == "binary":
        headers = kserve_headers("unused", REQUEST_TYPE)
        del headers["ce-id"]
        body = json.dumps({"instances": [[1.0]]}).encode()
    else:
        event = json.loads(structured_event("unused", REQUEST_TYPE, {"instances": [[1.0]]}))
        del event["id"]
        body, headers = json.dumps(event).encode(), {"Content-Type": "application/cloudevents+json"}
    before = refused(sidecar).get("invalid_cloudevent", 0)
    reply = post(sidecar, "/", body, headers)
    assert reply.status_code == 400
    assert reply.json()["errors"][0] == {
        "reason": "invalid_cloudevent",
        "detail": "ce-id: required to pair request and response",
    }
    assert refused(sidecar)["invalid_cloudevent"] == before + 1


def test_oversized_content_length_is_refused_before_the_body_is_sent(sidecar):
    # Only the head is sent: the answer must come without waiting for a body that never will.
    head = (
        f"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {LIMIT * 1000}\r\n\r\n"
    ).encode()
    before = refused(sidecar).get("too_large", 0)
    answer = raw_request(sidecar, head)
    assert status_of(answer) == 413 and b"Connection: close" in answer
    assert refused(sidecar)["too_large"] == before + 1


def test_a_chunked_body_is_read_and_cut_at_the_limit(sidecar):
    good = json.dumps(native_record(2)).encode()

    def chunked(parts: list[bytes]) -> bytes:
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    head = b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw_request(sidecar, head + chunked([good[:10], good[10:]]))
    assert status_of(answer) == 200 and json.loads(answer.split(b"\r\n\r\n", 1)[1])["records"] == 1

    before = refused(sidecar).get("too_large", 0)
    answer = raw_request(sidecar, head + chunked([b"[" + b" " * 1000] * 5))
    assert status_of(answer) == 413
    assert refused(sidecar)["too_large"] == before + 1

    before = refused(sidecar).get("bad_body", 0)
    answer = raw_request(sidecar, head + b"zz\r\nabc\r\n0\r\n\r\n")
    assert status_of(answer) == 400
    assert refused(sidecar)["bad_body"] == before + 1


def test_keep_alive_survives_refusals(sidecar):
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        for body, status in [(b"{bad", 400), (json.dumps(native_record(3)).encode(), 200), (b"{bad", 400)] * 3:
            connection.request("POST", "/v1/predictions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == status
            response.read()
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b"ok\n"
    finally:
        connection.close()
    wait_for(
        lambda: metrics(sidecar).get('model_health_predictions_total{model="fraud",model_version="7"}', 0) >= 3,
        what="the accepted records to be counted",
    )
