"""The shared server's connection handling: chunked bodies, bounded bodies, keep-alive rules."""

from __future__ import annotations

import io
import socket

import pytest
from prometheus_client import CollectorRegistry

from exporter.httpd.body import BodyError, read_body
from exporter.httpd.connection import CHUNKED_KEY, BadChunking, ChunkedInput, LengthInput
from exporter.httpd.server import HttpServer, health_app


def test_chunked_input_with_extensions_and_trailers():
    raw = b"4;name=value\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT"
    stream = io.BytesIO(raw)
    body = ChunkedInput(stream)
    assert io.BufferedReader(body).read() == b"Wikipedia in \r\n\r\nchunks."
    assert body.finished and stream.read() == b"NEXT"  # the next request is left untouched


@pytest.mark.parametrize("raw", [b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabXY0\r\n\r\n", b"-1\r\n"])
def test_broken_chunking_is_refused(raw):
    with pytest.raises(BadChunking):
        io.BufferedReader(ChunkedInput(io.BytesIO(raw))).read()


def test_a_body_read_never_goes_past_its_length():
    stream = io.BytesIO(b"abcNEXT REQUEST")
    body = LengthInput(stream, 3)
    assert read_body({"CONTENT_LENGTH": "3", "wsgi.input": io.BufferedReader(body)}, 10) == b"abc"
    assert body.finished and stream.read() == b"NEXT REQUEST"


def test_a_chunked_body_past_the_limit_is_too_large():
    body = io.BufferedReader(ChunkedInput(io.BytesIO(b"8\r\n12345678\r\n0\r\n\r\n")))
    with pytest.raises(BodyError) as error:
        read_body({CHUNKED_KEY: True, "wsgi.input": body}, 7)
    assert (error.value.status, error.value.reason) == ("413 Content Too Large", "too_large")


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def test_one_connection_serves_requests_in_turn_and_head_closes_it():
    server = HttpServer(health_app(CollectorRegistry(), lambda: (True, "ok")), "127.0.0.1", 0).start()
    try:
        answer = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        assert answer.count(b"HTTP/1.1 200 OK") == 3
        answer = exchange(
            server.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert answer.count(b"HTTP/1.1 200 OK") == 1 and b"Connection: close" in answer
        answer = exchange(server.port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 501")
    finally:
        server.stop()
