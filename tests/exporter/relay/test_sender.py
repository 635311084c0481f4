"""One attempt on the wire: timeouts, refused connections, and https with a private CA."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from exporter.relay.sender import TransportError, send
from exporter.relay.targets import OutboundRequest
from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification
from tests.support.tls import make_ca, write_pair


def _request(url: str) -> OutboundRequest:
    return OutboundRequest("POST", url, {"Content-Type": "application/json"}, b"{}")


def test_refused_connection_is_a_transport_error() -> None:
    from exporter.kafka.embedded import free_port

    with pytest.raises(TransportError, match="connecting"):
        send(_request(f"http://127.0.0.1:{free_port()}/x"), 5.0, 5.0)


def test_silent_target_times_out_reading() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        with pytest.raises(TransportError, match="timed out waiting for the answer"):
            send(_request(f"http://127.0.0.1:{listener.getsockname()[1]}/x"), 5.0, 0.2)
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_error_answer_keeps_status_retry_after_and_an_excerpt() -> None:
    target = FakeTarget("generic").start()  # no secret: the unsigned request gets past the check
    try:
        target.fail_next(1, status=503, retry_after="7")
        response = send(_request(f"{target.url}/x"), 5.0, 5.0)
    finally:
        target.stop()
    assert (response.status, response.retry_after) == (503, "7")
    assert "injected failure" in response.excerpt


@pytest.fixture
def tls_target(tmp_path: Path, secret: str):
    ca = make_ca()
    cert, key = write_pair(ca.issue(["localhost"]), tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    fake = FakeTarget("generic", secret, tls=context).start()
    yield fake, tmp_path / "ca.crt"
    fake.stop()


def test_https_target_with_a_private_ca(start_relay, tls_target) -> None:
    fake, ca_file = tls_target
    relay = start_relay(fake, target={"ca_file": str(ca_file)})
    relay.post(notification(alert()))
    (request,) = fake.wait_for(1)
    assert request.verified


def test_https_target_with_an_unknown_ca_is_not_trusted(tls_target) -> None:
    fake, _ = tls_target
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        send(_request(f"{fake.url}/x"), 5.0, 5.0)
