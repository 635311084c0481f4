"""Is a Kafka broker there? A one-request probe and an exponential-backoff wait around it.

The probe speaks the Kafka protocol itself (one Metadata v4 request over a plain socket)
instead of building a client: it needs neither optional client library, starts no
background threads, and fails within its timeout instead of a client's bootstrap timeout.
It is plaintext only; deployments behind TLS or SASL pass their own ``check`` to
:func:`wait_for_broker`.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from exporter.kafka.types import BrokerUnavailable

T = TypeVar("T")

_METADATA = 3
_METADATA_VERSION = 4  # old enough for any broker since Kafka 1.0, new enough for Kafka 4
_CORRELATION_ID = 0x6D68  # any value; checked on the reply
_MAX_REPLY_BYTES = 1 << 20


@dataclass(frozen=True)
class BrokerAddress:
    node_id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_bootstrap(bootstrap_servers: str) -> list[tuple[str, int]]:
    """``"a:9092,[::1]:9093,PLAINTEXT://b"`` → ``[("a", 9092), ("::1", 9093), ("b", 9092)]``."""
    addresses = []
    for item in bootstrap_servers.split(","):
        item = item.strip()
        if "://" in item:
            item = item.split("://", 1)[1]
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest.lstrip(":")
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        else:
            host, port_text = item, ""
        try:
            port = int(port_text) if port_text else 9092
        except ValueError:
            raise BrokerUnavailable(f"bad port in bootstrap server {item!r}") from None
        addresses.append((host, port))
    if not addresses:
        raise BrokerUnavailable(f"no bootstrap servers in {bootstrap_servers!r}")
    return addresses


def _metadata_request(client_id: str) -> bytes:
    client = client_id.encode()
    body = struct.pack(">hhih", _METADATA, _METADATA_VERSION, _CORRELATION_ID, len(client))
    # An empty topic list (not null) asks for brokers only, cheap on clusters with many topics.
    body += client + struct.pack(">ib", 0, 0)
    return struct.pack(">i", len(body)) + body


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-reply")
        chunks += chunk
    return bytes(chunks)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self._data, self._at)
        self._at += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        text = self._data[self._at : self._at + length].decode()
        self._at += length
        return text


def _parse_brokers(reply: bytes) -> list[BrokerAddress]:
    reader = _Reader(reply)
    if reader.take(">i") != _CORRELATION_ID:
        raise ConnectionError("reply does not answer the metadata request: not a Kafka broker?")
    reader.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(reader.take(">i")):
        node_id = reader.take(">i")
        host = reader.string() or ""
        port = reader.take(">i")
        reader.string()  # rack
        brokers.append(BrokerAddress(node_id, host, port))
    return brokers


def probe(bootstrap_servers: str, timeout_s: float = 2.0, client_id: str = "model-health") -> list[BrokerAddress]:
    """Ask the bootstrap servers, in order, for metadata; return the brokers the first one advertises.

    Raises ``OSError`` (connection refused, timeout, garbage reply) when none answers.
    """
    last: OSError | None = None
    for host, port in parse_bootstrap(bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as sock:
                sock.settimeout(timeout_s)
                sock.sendall(_metadata_request(client_id))
                (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
                if not 0 < size <= _MAX_REPLY_BYTES:
                    raise ConnectionError(f"reply of {size} bytes: not a Kafka broker?")
                brokers = _parse_brokers(_recv_exactly(sock, size))
        except (OSError, struct.error) as error:
            last = error if isinstance(error, OSError) else ConnectionError(f"malformed reply: {error}")
            continue
        if not brokers:
            last = ConnectionError(f"{host}:{port} answered but advertises no brokers")
            continue
        return brokers
    assert last is not None
    raise last


@dataclass(frozen=True)
class Backoff:
    """Delays ``initial_s, initial_s*factor, ...`` capped at ``max_s``."""

    initial_s: float = 0.1
    factor: float = 2.0
    max_s: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


def retry(
    operation: Callable[[], T],
    *,
    what: str,
    timeout_s: float,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``operation`` until it succeeds or ``timeout_s`` passes, backing off between tries.

    Raises :class:`BrokerUnavailable` naming ``what`` and the last error; other exceptions
    than ``retry_on`` propagate at once, since retrying a configuration mistake only hides it.
    For a client that may start before its broker::

        consumer = retry(lambda: open_consumer(settings), what="connect the consumer",
                         timeout_s=120, retry_on=(BrokerUnavailable,))
    """
    deadline = clock() + timeout_s
    delays = backoff.delays()
    attempts = 0
    while True:
        attempts += 1
        try:
            return operation()
        except retry_on as error:
            remaining = deadline - clock()
            if remaining <= 0:
                raise BrokerUnavailable(
                    f"{what}: still failing after {attempts} attempt(s) in {timeout_s:g} s: {error}"
                ) from error
            sleep(min(next(delays), remaining))


def wait_for_broker(
    bootstrap_servers: str,
    timeout_s: float = 30.0,
    *,
    check: Callable[[str], list[BrokerAddress]] = probe,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[BrokerAddress]:
    """Block until a broker answers a metadata request; return what it advertises.

    For start-up loops: an unreachable broker costs retries with exponential backoff, not a
    crash, and after ``timeout_s`` (plus at most one probe's own timeout) one
    :class:`BrokerUnavailable` says which address failed. ``check`` is the seam for TLS/SASL
    listeners and for tests.
    """
    return retry(
        lambda: check(bootstrap_servers),
        what=f"cannot reach Kafka at {bootstrap_servers}",
        timeout_s=timeout_s,
        backoff=backoff,
        sleep=sleep,
        clock=clock,
    )
