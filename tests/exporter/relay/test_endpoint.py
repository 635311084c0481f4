"""``POST /v1/alertmanager`` refuses bad requests with a 4xx, counts them, and keeps serving."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.exporter.relay.conftest import TOKEN
from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification

MAX_BODY = 64 * 1024


@pytest.fixture
def relay(start_relay, target: FakeTarget):
    return start_relay(target, http={"max_body_bytes": MAX_BODY})


def rejected(relay, reason: str) -> float:
    return relay.metric("model_health_relay_requests_rejected_total", reason=reason)


def test_missing_or_wrong_token_is_401(relay) -> None:
    payload = notification(alert())
    for token, headers in (
        (None, {}),
        ("not-the-token", {}),
        (None, {"Authorization": f"Basic {TOKEN}"}),
        (None, {"Authorization": "Bearer"}),
        (TOKEN + "x", {}),
    ):
        answer = relay.post(payload, token=token, headers=headers)
        assert answer.status_code == 401, (token, headers)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["reason"] == "unauthorized"
    assert rejected(relay, "unauthorized") == 5
    assert relay.metric("model_health_relay_notifications_total") == 0


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (b"{not json", "bad_json", "not JSON"),
        (b"\xff\xfe", "bad_json", "not JSON"),
        (b"[]", "bad_payload", "JSON object"),
        (json.dumps({**notification(alert()), "version": "3"}).encode(), "bad_payload", "version"),
        (
            json.dumps({k: v for k, v in notification(alert()).items() if k != "version"}).encode(),
            "bad_payload",
            "version",
        ),
        (json.dumps({**notification(alert()), "alerts": {"a": 1}}).encode(), "bad_payload", "alerts"),
        (json.dumps({**notification(alert()), "status": "pending"}).encode(), "bad_payload", "status"),
        (json.dumps(notification({**alert(), "fingerprint": None})).encode(), "bad_payload", "alerts.0.fingerprint"),
        (json.dumps(notification({**alert(), "startsAt": "yesterday"})).encode(), "bad_payload", "alerts.0.startsAt"),
        (
            json.dumps(notification({**alert(), "labels": {"model": 7}})).encode(),
            "bad_payload",
            "alerts.0.labels.model",
        ),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "array",
        "version-3",
        "no-version",
        "alerts-object",
        "bad-status",
        "no-fingerprint",
        "bad-startsAt",
        "label-not-string",
    ],
)
def test_bad_payload_is_400(relay, body: bytes, reason: str, words: str) -> None:
    answer = relay.post(content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["reason"] == reason
    assert words in answer.json()["error"]
    assert rejected(relay, reason) == 1


def test_extra_fields_from_a_newer_alertmanager_are_ignored(relay, target: FakeTarget) -> None:
    payload = notification({**alert(), "silencedBy": [], "newField": {"x": 1}})
    payload["futureField"] = True
    assert relay.post(payload).status_code == 200
    target.wait_for(1)


def test_huge_body_is_413(relay) -> None:
    huge = json.dumps(notification(*[alert(f"m{i}", reason="x" * 500) for i in range(200)])).encode()
    assert len(huge) > MAX_BODY
    answer = relay.post(content=huge)
    assert answer.status_code == 413
    assert answer.json()["reason"] == "too_large"
    assert rejected(relay, "too_large") == 1


def test_wrong_method_405_unknown_path_404(relay) -> None:
    answer = httpx.get(f"{relay.url}/v1/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    assert rejected(relay, "method") == 1
    assert httpx.post(f"{relay.url}/v1/alertmanagers", json={}).status_code == 404
    assert httpx.post(f"{relay.url}/metrics", json={}).status_code == 405


def _raw_post(relay, headers: bytes, body: bytes) -> str:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/alertmanager HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\n"
            + headers
            + b"\r\n"
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode()


def _chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts) + b"0\r\n\r\n"


def test_chunked_body_is_accepted_within_the_limit(relay, target: FakeTarget) -> None:
    body = json.dumps(notification(alert())).encode()
    answer = _raw_post(relay, b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n", _chunked(body))
    assert answer.split(" ", 2)[1] == "200", answer
    target.wait_for(1)


def test_chunked_body_over_the_limit_is_413_and_broken_chunking_400(relay) -> None:
    huge = _chunked(b"x" * (MAX_BODY + 10))
    assert _raw_post(relay, b"Transfer-Encoding: chunked\r\n", huge).split(" ", 2)[1] == "413"
    broken = _raw_post(relay, b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n")
    assert broken.split(" ", 2)[1] == "400", broken
    assert rejected(relay, "too_large") == 1 and rejected(relay, "bad_body") == 1


def test_keeps_serving_after_every_kind_of_bad_request(relay, target: FakeTarget) -> None:
    relay.post(notification(alert()), token="wrong")
    relay.post(content=b"{")
    relay.post(content=b"x" * (MAX_BODY + 1))
    relay.post({"version": "4"})
    httpx.put(f"{relay.url}/v1/alertmanager")
    assert httpx.get(f"{relay.url}/healthz").status_code == 200
    assert httpx.get(f"{relay.url}/readyz").text.strip() == "ready"
    answer = relay.post(notification(alert("fraud", "7")))
    assert answer.status_code == 200 and len(answer.json()["deliveries"]) == 1
    target.wait_for(1)
    counts = {
        reason: rejected(relay, reason) for reason in ("unauthorized", "bad_json", "too_large", "bad_payload", "method")
    }
    assert counts == {"unauthorized": 1, "bad_json": 1, "too_large": 1, "bad_payload": 1, "method": 1}
    assert relay.metric("model_health_relay_notifications_total") == 1


def test_metrics_are_the_catalogue_relay_metrics(relay) -> None:
    from exporter.catalogue import all_series_names, for_owner

    names = {name for name, _ in relay.metrics()}
    assert names <= all_series_names()
    assert {m.name for m in for_owner("relay")} <= names
