"""Real server processes for end-to-end tests: start, wait until ready, stop, and read their APIs.

``running(name, argv, log, ready_url)`` starts a process with its output in ``log``, polls
``ready_url`` until it answers 200 (failing at once, with the log's tail, if the process
exits), and on the way out sends SIGTERM, waits, and only then kills. ``PrometheusApi``
reads a Prometheus's HTTP API (instant queries, rules, alerts); ``scrape`` parses a
``/metrics`` page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
# Generous: CI machines are small and shared; every wait polls, none sleeps blindly.
START_TIMEOUT_S = 90.0


def binary(name: str, *alternatives: str) -> str:
    """The path of an installed program (the Debian packages `.ci/system-packages` installs)."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    raise AssertionError(f"{name} is not installed; `make test` installs it via .ci/system-packages")


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float, interval: float = 0.25) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, 4xx/5xx included; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        """Fail with the log's tail if the process has exited."""
        if not self.alive():
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{log_tail(self.log)}")


def start(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    handle = log.open("wb")
    try:
        popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    finally:
        handle.close()
    return Process(name, popen, log)


def stop(process: Process, timeout: float = 20.0) -> None:
    if process.alive():
        process.popen.terminate()
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait(timeout=timeout)


def wait_ready(process: Process, url: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log) if the process exits."""

    def ready() -> bool:
        process.check()
        answer = http_get(url, timeout=2.0)
        return answer is not None and answer[0] == 200

    try:
        wait_for(ready, f"{process.name} at {url}", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{process.name} log:\n{log_tail(process.log)}") from None


@contextmanager
def running(
    name: str, argv: list[str], log: Path, ready_url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Process]:
    """A started process (ready when ``ready_url`` answers 200), stopped on the way out."""
    process = start(name, argv, log, env)
    try:
        if ready_url is not None:
            wait_ready(process, ready_url)
        yield process
    finally:
        stop(process)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted label pairs): value}`` of a ``/metrics`` page."""
    answer = http_get(url)
    assert answer is not None and answer[0] == 200, f"scrape of {url} failed: {answer}"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer[1].decode())
        for sample in family.samples
    }


@dataclass(frozen=True)
class PrometheusApi:
    """``base`` is e.g. ``http://127.0.0.1:9090``."""

    base: str

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = http_get(f"{self.base}/api/v1/{path}{query}")
        if answer is None:
            return None
        document = json.loads(answer[1])
        assert document.get("status") == "success", f"{path} {params}: {document}"
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = self._get("query", query=expr)
        if data is None:
            return []
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def targets(self) -> list[dict[str, Any]]:
        data = self._get("targets")
        return data["activeTargets"] if data else []

    def rules(self) -> list[dict[str, Any]]:
        data = self._get("rules")
        return data["groups"] if data else []

    def alerts(self) -> list[dict[str, Any]]:
        data = self._get("alerts")
        return data["alerts"] if data else []
