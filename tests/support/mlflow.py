"""A real MLflow tracking server (``mlflow server``, SQLite) on loopback, and REST helpers.

Import the fixture into a test module (tests/conftest.py is shared)::

    from tests.support.mlflow import mlflow_server  # noqa: F401

The server is session-scoped: it takes ~10 s to start (database migrations), so one
serves every test of a process; tests keep apart by registering uniquely named models.
Helpers talk to the server's REST API, as a training pipeline would, so the tests need
not import the heavy ``mlflow`` client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.kafka.embedded import free_port

MLFLOW = Path(sys.executable).with_name("mlflow")
STARTUP_TIMEOUT_S = 180.0  # migrations on a loaded 2-core machine can take a while


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a running MLflow tracking server."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    # Nothing of ours leaks in (a stray MLFLOW_* or proxy variable), only what it needs to run.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the process
    process = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {process.returncode}: {(root / 'server.log').read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy after {STARTUP_TIMEOUT_S:g} s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def call(url: str, method: str, body: dict[str, Any] | None = None, **params: str) -> dict[str, Any]:
    """One REST call: POST ``body`` as JSON, or GET with ``params``."""
    address = f"{url}/api/2.0/mlflow/{method}"
    if body is None:
        address += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(address)
    else:
        request = urllib.request.Request(address, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def unique_name(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register(
    url: str, name: str, *, run: str | None = None, start_ms: int = 1_700_000_000_000, end_ms: int | None = None
) -> dict[str, Any]:
    """Register a new version of ``name`` (created if new) and return its ``model_version``.

    ``run``: ``"finished"`` (a run that ended at ``end_ms``), ``"running"`` (not ended),
    an explicit run id the server does not know, or None for a version without a run.
    """
    try:
        call(url, "registered-models/create", {"name": name})
    except urllib.error.HTTPError as error:
        if error.code != 400:  # RESOURCE_ALREADY_EXISTS: a second version of the same model
            raise
    body: dict[str, Any] = {"name": name, "source": f"s3://models/{name}"}
    if run in ("finished", "running"):
        info = call(url, "runs/create", {"experiment_id": "0", "start_time": start_ms})["run"]["info"]
        if run == "finished":
            call(url, "runs/update", {"run_id": info["run_id"], "status": "FINISHED", "end_time": end_ms})
        body = {"name": name, "source": f"runs:/{info['run_id']}/model", "run_id": info["run_id"]}
    elif run is not None:
        body["run_id"] = run
    return call(url, "model-versions/create", body)["model_version"]
