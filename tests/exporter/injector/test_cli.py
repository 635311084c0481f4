"""``model-health injector --config FILE`` as a process: starts, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from exporter.kafka.embedded import free_port
from tests.support.tls import make_ca, write_pair

TIMEOUT_S = 30.0


def _command(config: Path) -> list[str]:
    return [sys.executable, "-c", "from exporter.cli import main; main()", "injector", "--config", str(config)]


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MODEL_HEALTH_")}


def test_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    ca = make_ca()
    cert_file, key_file = write_pair(ca.issue(["localhost"]), tmp_path / "tls")
    port = free_port()
    config = tmp_path / "injector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "http": {"host": "127.0.0.1", "port": port},
                "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
                "sidecar": {"image": "registry.example.com/model-health:0.1.0", "native_sidecar": False},
            }
        )
    )
    process = subprocess.Popen(
        _command(config), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        context = ssl.create_default_context(cadata=ca.pem.decode())
        deadline = time.monotonic() + TIMEOUT_S
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"https://127.0.0.1:{port}/readyz", verify=context, timeout=5).status_code
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "plain container" in output and "stopped" in output


def test_unloadable_certificate_fails_at_start_naming_the_files(tmp_path: Path) -> None:
    config = tmp_path / "injector.yaml"
    config.write_text(
        yaml.safe_dump({"tls": {"cert_file": str(tmp_path / "missing.crt"), "key_file": str(tmp_path / "k")}})
    )
    result = subprocess.run(_command(config), env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert "tls: cannot load" in result.stderr and "missing.crt" in result.stderr


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "injector.yaml"
    config.write_text(yaml.safe_dump({"sidecar": {"resources": {"requests": {"cpu": "lots"}}}}))
    result = subprocess.run(_command(config), env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert "sidecar.resources.requests.cpu" in result.stderr
