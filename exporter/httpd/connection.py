"""One HTTP connection of the shared WSGI server: keep-alive, request bodies, quiet logs.

The standard library's ``wsgiref`` handler answers one request per connection in HTTP/1.0
and hands the application the raw socket as ``wsgi.input``. That costs a TCP handshake per
request and lets an application block reading past the body. This handler keeps
HTTP/1.1 connections open (KServe's logger, Prometheus and most clients reuse them) and
gives the application a body stream that ends where the request body ends: a
``Content-Length`` body is cut at its length, and a ``Transfer-Encoding: chunked`` body is
de-chunked here, as PEP 3333 asks of servers.

A connection is closed after the response whenever reusing it would be unsafe: the
application left part of the body unread (a 413 or 404 answered without reading), the
response has no ``Content-Length``, the request was ``HEAD``, the client asked for it, or
a read failed. Idle connections time out after :data:`IDLE_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import io
import socket
from http.server import BaseHTTPRequestHandler
from typing import IO, Any, cast
from wsgiref.headers import Headers
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

IDLE_TIMEOUT_SECONDS = 60.0
MAX_REQUEST_LINE = 65536
# A chunk-size line is a hex number and optional extensions; anything longer is not HTTP.
MAX_CHUNK_LINE = 4096
# Set in the environ when the body was chunked, so readers know no length was announced.
CHUNKED_KEY = "model_health.chunked"


class BadChunking(ValueError):
    """A chunked body that breaks the framing of RFC 9112 section 7.1."""


class LengthInput(io.RawIOBase):
    """The request body as announced by ``Content-Length``: EOF after that many bytes."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self.remaining))
        if not data:
            raise ConnectionError(f"client closed the connection with {self.remaining} body bytes unsent")
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)

    @property
    def finished(self) -> bool:
        return self.remaining <= 0


class ChunkedInput(io.RawIOBase):
    """A ``Transfer-Encoding: chunked`` body, de-chunked; trailers are read and dropped."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._chunk_left = 0
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.finished:
            return 0
        if self._chunk_left == 0:
            self._chunk_left = self._next_chunk_size()
            if self._chunk_left == 0:
                self._read_trailers()
                self.finished = True
                return 0
        data = self._stream.read(min(len(buffer), self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection inside a chunk")
        buffer[: len(data)] = data
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._stream.read(2) != b"\r\n":
            raise BadChunking("chunk data not followed by CRLF")
        return len(data)

    def _line(self) -> bytes:
        line = self._stream.readline(MAX_CHUNK_LINE + 1)
        if len(line) > MAX_CHUNK_LINE:
            raise BadChunking("chunk-size line too long")
        if not line.endswith(b"\n"):
            raise ConnectionError("client closed the connection inside the chunk framing")
        return line.rstrip(b"\r\n")

    def _next_chunk_size(self) -> int:
        size_text = self._line().split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise BadChunking(f"bad chunk size {size_text[:20]!r}")
        return int(size_text, 16)

    def _read_trailers(self) -> None:
        while self._line():
            pass


class _Response(ServerHandler):
    """wsgiref's handler, speaking HTTP/1.1 and telling the connection whether it can be reused."""

    http_version = "1.1"
    connection: KeepAliveHandler
    request_handler: BaseHTTPRequestHandler  # wsgiref's log_message goes through it
    headers: Headers  # set by wsgiref's start_response before cleanup_headers runs

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        headers = self.headers
        if "Content-Length" not in headers or headers.get("Connection", "").lower() == "close":
            self.connection.close_connection = True
        body = self.connection.body
        if body is not None and not body.finished:
            # Answered without reading the whole body (a 413, say): say so before closing.
            self.connection.close_connection = True
        if self.connection.close_connection and "Connection" not in headers:
            headers["Connection"] = "close"


class KeepAliveHandler(WSGIRequestHandler):
    """Serves requests on one connection until either side ends it; logs nothing per request."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    # Buffered writes, flushed once per response: wsgiref writes the status line, each
    # header block and the body separately, and small unflushed segments on a kept-alive
    # connection meet the client's delayed ACK (Nagle): 40 ms per request.
    wbufsize = 64 * 1024
    body: LengthInput | ChunkedInput | None = None

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        self.close_connection = True
        try:
            self._handle_one()
            while not self.close_connection:
                self._handle_one()
        except (ConnectionError, TimeoutError, BadChunking):
            # The peer went away, idled out or broke the framing; nothing left to answer.
            self.close_connection = True

    def _handle_one(self) -> None:
        self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():  # it has answered with an error and set close_connection
            return
        environ = self.get_environ()
        body = self.body = self._body(environ)
        if body is None:
            return
        if self.command == "HEAD":
            # wsgiref would send the application's body after a HEAD response.
            self.close_connection = True
        # wsgiref sets wsgi.input to the stdin it is given: give it the bounded body.
        response = _Response(
            environ["wsgi.input"], cast(IO[bytes], self.wfile), self.get_stderr(), environ, multithread=True
        )
        response.connection = self
        response.request_handler = self  # wsgiref logs through it
        app = cast(WSGIServer, self.server).get_app()
        assert app is not None, "the server is serving an application"
        response.run(app)
        self.wfile.flush()
        if not body.finished:
            # Unread body bytes would be taken for the next request line.
            self.close_connection = True

    def _body(self, environ: dict[str, Any]) -> LengthInput | ChunkedInput | None:
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding:
            if encoding != "chunked":
                self.send_error(501, f"transfer coding {encoding!r} is not supported")
                self.close_connection = True
                return None
            environ.pop("CONTENT_LENGTH", None)  # RFC 9112: chunked overrides any length
            environ[CHUNKED_KEY] = True
            stream: LengthInput | ChunkedInput = ChunkedInput(self.rfile)
        else:
            text = environ.get("CONTENT_LENGTH", "") or "0"
            try:
                length = int(text)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.send_error(400, "bad Content-Length")
                self.close_connection = True
                return None
            stream = LengthInput(self.rfile, length)
        environ["wsgi.input"] = io.BufferedReader(stream)
        return stream

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        if self.headers.get("Content-Type") is None:
            # wsgiref fills in text/plain; an absent type must stay absent to be judged as such.
            environ["CONTENT_TYPE"] = ""
        return environ

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Scrapes every few seconds and ingest at thousands a second would drown the logs.
        pass
