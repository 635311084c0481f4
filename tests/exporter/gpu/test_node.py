"""``model-health node``: config, HTTP endpoints, signals, clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from exporter.cli import main
from exporter.config import NodeConfig, load_config
from exporter.errors import UserError
from exporter.gpu.fake import DEFAULT_FIXTURES, Capture, FakeNvml
from exporter.gpu.node import serve
from exporter.kafka.embedded import free_port
from tests.support.gpu import wait_until

HOST = "127.0.0.1"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_defaults_and_mode(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "gpu: {interval_seconds: 2}\n"), NodeConfig)
    # Leaving mode out means node, not GpuConfig's own sidecar default.
    assert config.gpu.mode == "node" and config.gpu.interval_seconds == 2
    assert config.http.port == 9879 and config.proc_root == Path("/proc")
    rebased = load_config(write(tmp_path, "proc_root: host/proc\n"), NodeConfig)
    assert rebased.proc_root == tmp_path / "host" / "proc"
    with pytest.raises(UserError, match=r"node\.yaml: gpu\.mode: Input should be .node. or .off."):
        load_config(write(tmp_path, "gpu: {mode: sidecar}\n"), NodeConfig)
    with pytest.raises(UserError, match=r"gpu\.slow_interval_seconds: must be at least interval_seconds"):
        load_config(write(tmp_path, "gpu: {interval_seconds: 5, slow_interval_seconds: 1}\n"), NodeConfig)
    with pytest.raises(UserError, match=r"gpu\.slow_querys: unknown key \(did you mean 'slow_queries'\?\)"):
        load_config(write(tmp_path, "gpu: {slow_querys: false}\n"), NodeConfig)


def test_serves_metrics_health_and_readiness(capture: Capture) -> None:
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    config = NodeConfig(http={"host": HOST, "port": free_port()}, gpu={"mode": "node", "interval_seconds": 0.05})
    stop, ports = threading.Event(), []
    thread = threading.Thread(target=serve, args=(config, stop), kwargs={"nvml": fake, "on_ready": ports.append})
    thread.start()
    try:
        wait_until(lambda: bool(ports))
        base = f"http://{HOST}:{ports[0]}"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert "1 GPU(s)" in httpx.get(f"{base}/readyz").text
        assert httpx.get(f"{base}/healthz").text == "ok\n"
        metrics = httpx.get(f"{base}/metrics").text
        assert "model_health_build_info{version=" in metrics
        assert "model_health_gpu_collector_up 1.0" in metrics
        assert 'model_health_gpu_utilization_ratio{gpu="0"' in metrics
        assert httpx.post(f"{base}/metrics").status_code == 405
        assert httpx.get(f"{base}/nope").status_code == 404
        assert httpx.get(f"{base}/healthz").status_code == 200  # still serving after bad requests
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    with pytest.raises(Exception, match="Uninitialized"):
        fake.nvmlDeviceGetCount()  # NVML was shut down on the way out


def test_port_in_use_is_a_clear_error(capture: Capture) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = NodeConfig(http={"host": HOST, "port": port})
        with pytest.raises(UserError, match=rf"http: cannot listen on {HOST}:{port}"):
            serve(config, threading.Event(), nvml=FakeNvml(capture))


def test_cli_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "gpu: {mode: sidecar}\n")
    with pytest.raises(SystemExit) as exited:
        main(["node", "--config", str(bad)])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err
    good = write(tmp_path, f"http: {{host: {HOST}, port: {free_port()}}}\n")
    with pytest.raises(SystemExit) as exited:
        main(["node", "--config", str(good), "--fake-nvml", str(tmp_path)])
    assert exited.value.code == 2
    assert "not an NVML capture" in capsys.readouterr().err


def test_command_runs_on_the_fake_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write(tmp_path, f"http: {{host: {HOST}, port: {port}}}\ngpu: {{interval_seconds: 0.1}}\n")
    command = [
        sys.executable,
        "-c",
        "from exporter.cli import main; main()",
        "node",
        "--config",
        str(config),
        "--fake-nvml",
        str(DEFAULT_FIXTURES),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        wait_until(ready, timeout=60)
        assert process.poll() is None
        assert "model_health_gpu_info{" in httpx.get(f"http://{HOST}:{port}/metrics").text
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "NVML up: 1 GPU(s) (NVIDIA H200)" in output
    assert "node agent stopping" in output


def test_every_node_config_key_is_described() -> None:
    # The page that shows this table (docs/reference/config/node.md) is checked by tests/docs/.
    from exporter.config import config_reference, field_paths

    table = config_reference(NodeConfig)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == field_paths(NodeConfig)
    assert all(row.rstrip(" |").split("|")[-1].strip() for row in rows)
