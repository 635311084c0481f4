"""Fuzzed requests at every HTTP endpoint of every component: 2xx or 4xx, never 5xx, never dead.

Each server is the real one, started in this process on a loopback port: the aggregator
(against the real broker), the sidecar (forwarding to the real broker), the relay (with a
fake retraining target), the injector (over TLS, with a certificate made here) and the node
agent (on the fake NVML). Hypothesis writes raw HTTP/1.x requests byte by byte — random and
real methods, known and random paths and queries, content types, ``ce-`` and auth headers,
right and wrong ``Content-Length``, chunked bodies good and broken, random and nearly-valid
bodies — sends each on a fresh connection, closes the sending side and reads the answer.

The rules: an answer comes (within 20 s) and its status is below 500; after every request a
fresh ``GET /healthz`` answers 200. The only 5xx allowed are the documented ones: 503 from
``/readyz`` (not ready), the aggregator's drift report before its first evaluation, the
sidecar ingest's documented 503s with ``Retry-After``
(``queue_full``, and ``kafka_unavailable``/``delivery_timeout``/``produce_failed`` as answers
wait for Kafka)
and 505 for an HTTP version above 1.x (the protocol's own answer). A request with no request
line at all may get no answer (``http.server`` closes such a connection silently).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from detectors.profile import build_profile
from exporter.aggregator.service import serve as serve_aggregator
from exporter.config import AggregatorConfig, InjectorConfig, NodeConfig, RelayConfig, load_config
from exporter.demo.synthetic import synthetic_table
from exporter.gpu.fake import Capture, FakeNvml
from exporter.gpu.node import serve as serve_node
from exporter.injector import service as injector_service
from exporter.kafka.embedded import free_port
from exporter.pipeline.decode import BatchDecoder
from exporter.profiles import save_profile
from exporter.relay.service import serve as serve_relay
from exporter.sidecar import Sidecar
from exporter.sidecar.service import kafka_producer
from tests.exporter.decoders.messages import REQUEST_TYPE, RESPONSE_TYPE, native_record, structured_event
from tests.exporter.injector import reviews
from tests.exporter.relay.conftest import TOKEN
from tests.exporter.relay.conftest import write_config as write_relay_config
from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification
from tests.exporter.sidecar.helpers import sidecar_config
from tests.support.broker import unique_group
from tests.support.gpu import capture_dir
from tests.support.tls import make_ca, write_pair

ANSWER_TIMEOUT_S = 20.0
HEALTH_TIMEOUT_S = 20.0
SHAPE = {"numeric": 3, "categorical": 1, "drifted": 1}


@dataclass
class Server:
    """A running component: where it listens, which paths it serves, how to reach it."""

    name: str
    port: int
    paths: tuple[str, ...]
    bodies: tuple[bytes, ...]
    tls: ssl.SSLContext | None = None
    headers: tuple[tuple[str, str], ...] = ()  # what a real client of it sends, e.g. auth
    statuses: Counter[int] = field(default_factory=Counter)

    def connect(self) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=ANSWER_TIMEOUT_S)
        if self.tls is None:
            return raw
        return self.tls.wrap_socket(raw, server_hostname="127.0.0.1")


def _run_in_thread(target: Callable[..., None], *args, **kwargs) -> tuple[threading.Event, threading.Thread, int]:
    """Start a component's ``serve(config, stop, on_ready=…)`` in a thread; returns its port."""
    stop, ports, errors = threading.Event(), [], []

    def run() -> None:
        try:
            target(*args, stop=stop, on_ready=ports.append, **kwargs)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not ports and not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    if errors:
        raise errors[0]
    assert ports, f"{target.__module__} did not start"
    return stop, thread, ports[0]


@pytest.fixture(scope="module")
def servers(broker, tmp_path_factory) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp("http-fuzz")
    stops: list[tuple[threading.Event, threading.Thread]] = []
    cleanups: list[Callable[[], None]] = []
    running: dict[str, Server] = {}
    try:
        running["aggregator"] = _aggregator(broker, root, stops)
        running["sidecar"] = _sidecar(broker, cleanups)
        running["relay"] = _relay(root, stops, cleanups)
        running["injector"] = _injector(root, stops)
        running["node"] = _node(stops)
        yield running
    finally:
        for stop, _ in stops:
            stop.set()
        for _, thread in stops:
            thread.join(30)
        for cleanup in reversed(cleanups):
            cleanup()


def _aggregator(broker, root: Path, stops) -> Server:
    profile = save_profile(
        build_profile(
            synthetic_table(2_000, seed=1, **SHAPE),
            model="fraud",
            model_version="7",
            created_at=1.7e9,
            prediction="prediction",
        ),
        root / "fraud.parquet",
    )
    topic = f"fuzz-{unique_group('p')}"
    broker.create_topics([topic, topic + "-labels", topic + "-dead"], partitions=1)
    config = AggregatorConfig(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": unique_group("fuzz"),
            "predictions_topic": topic,
            "labels_topic": topic + "-labels",
            "deadletter_topic": topic + "-dead",
            "session_timeout_ms": 2000,
            "heartbeat_interval_ms": 500,
        },
        models=[{"name": "fraud", "version": "7", "reference": str(profile)}],
        http={"host": "127.0.0.1", "port": free_port()},
        state={"dir": str(root / "aggregator-state")},
    )
    stop, thread, port = _run_in_thread(serve_aggregator, config, BatchDecoder(config.kafka.labels_topic))
    stops.append((stop, thread))
    paths = ("/metrics", "/healthz", "/readyz", "/report", "/report/fraud", "/api/v1/drift")
    return Server("aggregator", port, paths, ())


def _sidecar(broker, cleanups) -> Server:
    topic = f"fuzz-{unique_group('s')}"
    config = sidecar_config(
        model={"name": "fraud", "version": "7"},
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "predictions_topic": topic,
            "deadletter_topic": topic + "-dead",
        },
        http={"max_body_bytes": 64 * 1024},
    )
    sidecar = Sidecar(config, producer_factory=kafka_producer).start()
    cleanups.append(lambda: sidecar.stop(drain_timeout_s=5.0))
    record = json.dumps(native_record(1, features=3)).encode()
    bodies = (
        record,
        record + b"\n" + record,
        json.dumps([native_record(2, features=3)]).encode(),
        structured_event("e1", REQUEST_TYPE, {"instances": [[1.0, 2.0]]}),
        b"[" + structured_event("e2", RESPONSE_TYPE, {"predictions": [1]}) + b"]",
        json.dumps({"instances": [[1.0, 2.0]]}).encode(),
        json.dumps({"predictions": [0.5]}).encode(),
    )
    return Server("sidecar", sidecar.port, ("/", "/v1/predictions", "/metrics", "/healthz", "/readyz"), bodies)


def _relay(root: Path, stops, cleanups) -> Server:
    target = FakeTarget("generic").start()
    cleanups.append(target.stop)
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789").decode()
    path = write_relay_config(
        root / "relay",
        secret,
        f"{target.url}/hooks/retrain",
        http={"port": free_port(), "max_body_bytes": 64 * 1024},
        retrain={"cooldown_seconds": 0},
    )
    config = load_config(path, RelayConfig)
    stop, thread, port = _run_in_thread(serve_relay, config)
    stops.append((stop, thread))
    bodies = tuple(
        json.dumps(notification(alert(model, "1", status=status))).encode()
        for model, status in (("fraud", "firing"), ("churn", "resolved"), (None, "firing"))
    )
    return Server(
        "relay",
        port,
        ("/v1/alertmanager", "/metrics", "/healthz", "/readyz"),
        bodies,
        headers=(("Authorization", f"Bearer {TOKEN}"),),
    )


def _injector(root: Path, stops) -> Server:
    ca = make_ca()
    cert_file, key_file = write_pair(ca.issue(["localhost"]), root / "tls")
    config = InjectorConfig.model_validate(
        {
            "http": {"host": "127.0.0.1", "port": 1, "connection_timeout_seconds": 1.0, "max_body_bytes": 256 * 1024},
            "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
            "sidecar": {
                "image": "registry.example.com/model-health:0.1.0",
                "kafka": {"bootstrap_servers": "kafka:9092"},
            },
        }
    )
    config = config.model_copy(update={"http": config.http.model_copy(update={"port": 0})})
    stop, thread, port = _run_in_thread(injector_service.serve, config)
    stops.append((stop, thread))
    context = ssl.create_default_context(cadata=ca.pem.decode())
    bodies = (
        json.dumps(reviews.review(reviews.kserve_predictor(), "models")).encode(),
        json.dumps(reviews.review(reviews.seldon_v1_model(), "seldon", operation="UPDATE")).encode(),
    )
    return Server(
        "injector", port, ("/mutate", "/mutate?scope=namespace", "/metrics", "/healthz", "/readyz"), bodies, tls=context
    )


def _node(stops) -> Server:
    fake = FakeNvml(Capture.load(capture_dir()))
    config = NodeConfig(http={"host": "127.0.0.1", "port": free_port()}, gpu={"mode": "node", "interval_seconds": 0.2})
    stop, thread, port = _run_in_thread(serve_node, config, nvml=fake)
    stops.append((stop, thread))
    return Server("node", port, ("/metrics", "/healthz", "/readyz"), ())


# ------------------------------------------------------------------------------------ requests

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PRI"]
POST_PATHS = {"/", "/v1/predictions", "/v1/alertmanager", "/mutate", "/mutate?scope=namespace"}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-ndjson",
    "application/jsonl",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
    "application/json;;;",
    "APPLICATION/JSON",
    "text/json",
    "application/vnd.api+json",
]
HEADER_NAMES = [
    "ce-id",
    "ce-type",
    "ce-specversion",
    "ce-source",
    "ce-time",
    "ce-inferenceservicename",
    "ce-namespace",
    "ce-component",
    "Authorization",
    "Accept",
    "Accept-Encoding",
    "Expect",
    "Connection",
    "Host",
    "X-Forwarded-For",
    "Cookie",
    "Range",
    "If-None-Match",
    "Content-Encoding",
    "Upgrade",
]
HEADER_VALUES = [
    "1.0",
    REQUEST_TYPE,
    RESPONSE_TYPE,
    f"Bearer {TOKEN}",
    "Bearer wrong",
    "Basic Zm9vOmJhcg==",
    "100-continue",
    "close",
    "keep-alive",
    "gzip",
    "application/openmetrics-text; version=1.0.0",
    "bytes=0-5",
    "h2c",
    "2026-11-28T18:06:00Z",
    "not a time",
    "*",
    "e1",
    "fraud",
]
# Header text must stay on one line and be latin-1; anything else is not a header.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=40)
token = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127), min_size=1, max_size=10)
path_noise = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30)
FRAMINGS = ["length"] * 6 + [
    "none",
    "short",
    "long",
    "bad",
    "negative",
    "two",
    "chunked",
    "chunked",
    "bad-chunked",
    "chunked+length",
]


@dataclass(frozen=True)
class Request:
    """What one fuzzed client sends (shown shortened in failure reports)."""

    raw: bytes
    path: str
    version: str
    transfer_coding: str | None
    incomplete: bool  # the body is cut short of its framing: the client must close its side

    def __repr__(self) -> str:
        shown = self.raw if len(self.raw) <= 600 else self.raw[:400] + b"<...>" + self.raw[-150:]
        return f"Request({len(self.raw)} bytes, incomplete={self.incomplete}: {shown!r})"


def _damaged_body(draw, bodies: tuple[bytes, ...]) -> bytes:
    body = draw(st.sampled_from(bodies)) if bodies else b"{}"
    kind = draw(st.sampled_from(["as is", "as is", "cut", "flip", "insert", "random", "empty", "huge", "deep"]))
    if kind == "cut":
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    if kind == "flip" and body:
        at = draw(st.integers(0, len(body) - 1))
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    if kind == "insert":
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.binary(min_size=1, max_size=16)) + body[at:]
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return b""
    if kind == "huge":
        return b"\xff" * 70_000  # over every fuzzed server's body limit
    if kind == "deep":
        return b"[" * 5_000 + b"]" * 5_000  # deeper than Python's JSON parser recurses
    return body


@st.composite
def requests(draw, server: Server) -> Request:
    """One fuzzed request for ``server``: nearly valid (one thing wrong) or anything at all."""
    near_valid = draw(st.booleans())
    paths = [*server.paths, "/", "/nope", "/metrics/", "//metrics", "/v1/predictions/../metrics", "/%2e%2e/healthz"]
    if near_valid:
        path = draw(st.sampled_from(server.paths))
        method = "POST" if path in POST_PATHS else draw(st.sampled_from(["GET", "GET", "HEAD"]))
        version = "HTTP/1.1"
        headers: list[tuple[str, str]] = [("Host", "127.0.0.1"), *server.headers]
        if method == "POST":
            headers.append(
                (
                    "Content-Type",
                    draw(
                        st.sampled_from(
                            [
                                "application/json",
                                "application/x-ndjson",
                                "application/cloudevents+json",
                                "application/cloudevents-batch+json",
                            ]
                        )
                    ),
                )
            )
        if server.name == "sidecar" and path == "/" and draw(st.booleans()):
            headers += [
                ("ce-id", draw(st.sampled_from(["e1", "e2", ""]))),
                ("ce-specversion", "1.0"),
                ("ce-source", "http://predictor"),
                ("ce-type", draw(st.sampled_from([REQUEST_TYPE, RESPONSE_TYPE]))),
                ("ce-inferenceservicename", "fraud"),
            ]
        body = _damaged_body(draw, server.bodies) if method == "POST" else b""
        framing = draw(st.sampled_from(["length"] * 4 + ["chunked"] + FRAMINGS))
    else:
        method = draw(st.one_of(st.sampled_from(METHODS), token))
        path = draw(
            st.one_of(
                st.sampled_from(paths),
                st.sampled_from(paths).flatmap(lambda p: path_noise.map(lambda n: p + n)),
                st.just("*"),
                st.just("http://127.0.0.1/healthz"),
            )
        )
        version = draw(
            st.sampled_from(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTX/1.1", ""])
        )
        headers = [("Host", "127.0.0.1")]
        if draw(st.booleans()):
            headers.extend(server.headers)
        content_type = draw(st.one_of(st.none(), st.sampled_from(CONTENT_TYPES), header_text))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        body = _damaged_body(draw, server.bodies) if draw(st.booleans()) else draw(st.binary(max_size=64))
        framing = draw(st.sampled_from(FRAMINGS))
    if draw(st.integers(0, 40)) == 0:
        path += "/" + "a" * draw(st.integers(60_000, 70_000))  # around the request-line limit
    request_line = f"{method} {path} {version}".rstrip() if version else f"{method} {path}"
    if not near_valid and draw(st.integers(0, 30)) == 0:  # a request line that is not one
        request_line = draw(
            st.sampled_from(["", " ", "GET", "GET /", "\x00\x01", "GET  /healthz  HTTP/1.1", "G\tET / HTTP/1.1"])
        )
    payload, coding, incomplete = body, None, False
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "short":  # announces less than it sends: the rest looks like a next request
        headers.append(("Content-Length", str(len(body) // 2)))
    elif framing == "long":  # announces more than it sends, then closes its side
        headers.append(("Content-Length", str(len(body) + draw(st.integers(1, 10**6)))))
        incomplete = True
    elif framing == "bad":
        headers.append(("Content-Length", draw(st.sampled_from(["abc", "1e3", "0x10", " ", "", "9" * 30, "1,2"]))))
    elif framing == "negative":
        headers.append(("Content-Length", "-" + str(len(body))))
    elif framing == "two":
        headers += [("Content-Length", str(len(body))), ("Content-Length", str(len(body) + 1))]
    elif framing in ("chunked", "chunked+length", "bad-chunked"):
        coding = draw(st.sampled_from(["chunked"] * 6 + ["Chunked", "gzip, chunked", "identity"]))
        headers.append(("Transfer-Encoding", coding))
        if framing == "chunked+length":
            headers.append(("Content-Length", str(len(body))))
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        chunks, at = [], 0
        for size in sizes:
            if at >= len(body):
                break
            piece = body[at : at + size]
            chunks.append(f"{len(piece):x}".encode() + b"\r\n" + piece + b"\r\n")
            at += size
        if at < len(body):
            chunks.append(f"{len(body) - at:x}".encode() + b"\r\n" + body[at:] + b"\r\n")
        payload = b"".join(chunks) + b"0\r\n\r\n"
        if framing == "bad-chunked":
            payload = draw(
                st.sampled_from(
                    [
                        b"zz\r\n" + body,
                        b"5\r\nab",
                        payload[:-2],
                        b"ffffffffffffffffff\r\n",
                        b"3;" + b"x" * 5000 + b"\r\nabc\r\n0\r\n\r\n",
                        payload.replace(b"\r\n", b"\n"),
                    ]
                )
            )
            incomplete = True  # some of these are merely broken, some cut short: the client closes
    for _ in range(draw(st.integers(0, 3 if not near_valid else 1))):
        name = draw(st.one_of(st.sampled_from(HEADER_NAMES), token))
        value = draw(st.one_of(st.sampled_from(HEADER_VALUES), header_text))
        headers.append((name, value))
    if draw(st.integers(0, 25)) == 0:  # far too many headers
        headers += [(f"X-Many-{i}", "v") for i in range(draw(st.integers(90, 150)))]
    head = request_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    if not near_valid and draw(st.integers(0, 30)) == 0:  # a header line broken in the middle
        head = head.replace("\r\n", "\r\nbroken header line without colon\r\n", 1)
    return Request(head.encode("latin-1") + payload, path, version, coding, incomplete)


NASTY_BODIES = [
    (b"[" * 5_000 + b"]" * 5_000, "length"),  # deeper than Python's JSON parser recurses
    (b'{"a": ' * 3_000 + b"1" + b"}" * 3_000, "length"),
    (b"\xef\xbb\xbf{}", "length"),  # a byte-order mark
    (b'{"model": "fraud", "features": {"a": 1e999}, "prediction": NaN}', "length"),
    (b"\xff\xfe\x00{", "length"),  # not UTF-8
    (b"", "length"),
    (b"null", "length"),
    (b'{"version": "4", "alerts": [' + b"{}," * 2_000 + b"{}]}", "length"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": ' * 50, "length"),
    (b'{"model": "fraud"}', "long"),  # announces more than it sends
    (b'{"model": "fraud"}', "chunked-cut"),
]


def _fixed_request(server: Server, path: str, body: bytes, framing: str) -> Request:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in server.headers)
    if framing == "length":
        return Request((head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body, path, "HTTP/1.1", None, False)
    if framing == "long":
        return Request(
            (head + f"Content-Length: {len(body) + 1000}\r\n\r\n").encode() + body, path, "HTTP/1.1", None, True
        )
    chunk = f"{len(body) + 10:x}\r\n".encode() + body  # a chunk cut short
    return Request((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunk, path, "HTTP/1.1", "chunked", True)


STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)\r\n", re.IGNORECASE)


@dataclass
class Answer:
    data: bytes
    reset: bool  # the server reset the connection (it closed with part of our request unread)


def send(server: Server, request: Request | bytes) -> Answer:
    """Send a request and read one answer: until its ``Content-Length`` is in, or the server closes.

    A complete request is not followed by closing our side: a server that closes with request
    bytes unread resets the connection, and a reset can throw away an answer already sent.
    An incomplete one is, so that the server sees the body end.
    """
    raw = request.raw if isinstance(request, Request) else request
    incomplete = isinstance(request, Request) and request.incomplete
    answer = b""
    with server.connect() as connection:
        try:
            connection.sendall(raw)
            if incomplete and server.tls is None:
                # (TLS has no half-close: there the server's connection timeout ends it.)
                connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered early (a 413, a 400) and closed: its answer may still be there
        connection.settimeout(ANSWER_TIMEOUT_S)
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{server.name}: no whole answer within {ANSWER_TIMEOUT_S:g} s (hung) to {request!r}"
                )
            try:
                data = connection.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"{server.name}: no whole answer within {ANSWER_TIMEOUT_S:g} s (hung) to {request!r}"
                ) from None
            except (ConnectionResetError, BrokenPipeError):
                return Answer(answer, reset=True)
            except (ssl.SSLError, OSError):
                return Answer(answer, reset=True)
            if not data:
                return Answer(answer, reset=False)
            answer += data
            while answer.startswith((b"HTTP/1.1 100 ", b"HTTP/1.0 100 ")) and b"\r\n\r\n" in answer:
                answer = answer.partition(b"\r\n\r\n")[2]  # 100 Continue: the answer follows
            head, separator, body = answer.partition(b"\r\n\r\n")
            if separator and STATUS.match(answer):
                length = CONTENT_LENGTH.search(head + b"\r\n")
                if length is not None and len(body) >= int(length.group(1)):
                    return Answer(answer, reset=False)


def healthy(server: Server) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while True:
        try:
            answer = send(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").data
            match = STATUS.match(answer)
            if match and match.group(1) == b"200":
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{server.name} stopped answering /healthz after a fuzzed request")
        time.sleep(0.1)


def allowed_5xx(server: Server, status: int, request: Request, answer: bytes) -> bool:
    if status == 505:  # RFC 9110 15.6.6
        return bool(re.match(r"HTTP/([2-9]|1\.[2-9])", request.version))
    if status == 501:  # RFC 9112 6.1: a transfer coding the server does not implement
        return request.transfer_coding is not None and request.transfer_coding.lower() != "chunked"
    if status == 503 and request.path.split("?")[0] == "/readyz":
        return True
    if status == 503 and server.name == "aggregator" and b"not evaluated yet" in answer:
        return True  # the drift report before the first evaluation
    reasons = (b"queue_full", b"kafka_unavailable", b"delivery_timeout", b"produce_failed")
    return status == 503 and server.name == "sidecar" and any(r in answer for r in reasons) and b"Retry-After" in answer


def _request_line_usable(raw: bytes) -> bool:
    words = raw.split(b"\r\n", 1)[0].split()
    return len(words) == 3 and re.fullmatch(rb"HTTP/\d\.\d", words[2]) is not None and b"\x00" not in words[0]


@pytest.mark.parametrize("component", ["aggregator", "sidecar", "relay", "injector", "node"])
def test_fuzzed_requests_get_a_4xx_or_2xx_and_the_server_lives(component, servers, scale, figures):
    server = servers[component]
    healthy(server)
    seen: Counter[str] = Counter()
    started = time.monotonic()

    def one(request: Request) -> None:
        answer = send(server, request)
        data = answer.data
        match = STATUS.match(data)
        if match is not None:
            status = int(match.group(1))
            server.statuses[status] += 1
            seen[f"{status // 100}xx"] += 1
            assert status < 500 or allowed_5xx(server, status, request, data), (
                f"{server.name} answered {status} to {request!r}: {data[:400]!r}"
            )
        elif (data or request.raw.startswith(b"HEAD ")) and request.version in ("HTTP/0.9", "HTTP/2.0", ""):
            # http.server answers HTTP/0.9 requests, and refuses HTTP/2 ones, HTTP/0.9-style:
            # the body alone, no status line (so nothing at all to a HEAD). A refusal's body
            # names its code.
            code = re.search(rb"Error code: (\d{3})", data)
            if code is not None:
                status = int(code.group(1))
                server.statuses[status] += 1
                assert status < 500 or allowed_5xx(server, status, request, data), (
                    f"{server.name} answered {status} to {request!r}: {data[:400]!r}"
                )
            seen["http/0.9-style answer"] += 1
        elif (answer.reset or server.tls is not None) and (request.incomplete or len(request.raw) > 60_000):
            # Refused before the whole request was read (cut-short framing, over a size limit):
            # the server closed with our bytes unread, and the kernel's reset can overtake
            # its answer.
            seen["closed, request unread"] += 1
        else:
            assert not _request_line_usable(request.raw) or server.tls is not None and answer.reset, (
                f"{server.name}: no HTTP answer (reset={answer.reset}) to {request!r}: {data[:200]!r}"
            )
            seen["closed, no request line"] += 1
        healthy(server)

    failure = None
    try:
        # First the known-nasty bodies at every POST route, whatever the seed draws; then hypothesis.
        for path in (p for p in server.paths if p in POST_PATHS):
            for body, framing in NASTY_BODIES:
                one(_fixed_request(server, path, body, framing))
        examples = scale.pick(150, max(150, int(scale.seconds * 10)))
        prop = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        )(given(requests(server))(one))
        seed(scale.seed)(prop)()  # a run replays (MODEL_HEALTH_RELIABILITY_SEED)
    except BaseException as error:
        failure = str(error).splitlines()[0][:90]
        raise
    finally:
        fives = sum(v for k, v in server.statuses.items() if k >= 500)
        figures.record(
            sent=sum(seen.values()),
            counted=sum(seen.values()),
            faults=sum(seen.values()),
            lost=0,
            duplicated=None,
            **{k.replace(" ", "_").replace(",", ""): v for k, v in sorted(seen.items())},
            statuses=" ".join(f"{k}:{v}" for k, v in sorted(server.statuses.items())),
            all_5xx=fives,
            seconds=round(time.monotonic() - started, 1),
            **({"failure": failure} if failure else {}),
        )
