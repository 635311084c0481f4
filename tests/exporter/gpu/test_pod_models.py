"""Pod → model in the node agent: each pod named by its injected sidecar's config, found under /proc."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from exporter.config import InjectedSidecarConfig
from exporter.gpu.energy import ModelRef
from exporter.gpu.pod_models import SidecarModels, model_in_config, sidecar_config_path
from exporter.injector import names
from exporter.injector.mutation import sidecar_container
from tests.support.gpu import FakeClock, add_injected_sidecar, add_process

POD_A = "0e7c3a52-5b8e-4b6e-9a4c-2f1d3e4a5b6c"
POD_B = "7d1f9e20-3c4b-4a5d-8e6f-9a0b1c2d3e4f"


def test_the_injected_command_is_recognised_with_its_config_path() -> None:
    command = sidecar_container(InjectedSidecarConfig())["command"]
    expected = f"{names.CONFIG_DIR}/{names.CONFIG_FILE}"
    assert sidecar_config_path(command) == expected
    # As a console script the kernel shows the interpreter first.
    assert sidecar_config_path(["/usr/local/bin/python3.11", "/usr/local/bin/model-health", *command[1:]]) == expected
    assert sidecar_config_path(["model-health", "sidecar", "--config=/x.yaml"]) == "/x.yaml"
    assert sidecar_config_path(["model-health", "sidecar"]) is None
    assert sidecar_config_path(["model-health", "node", "--config", "/n.yaml"]) is None
    assert sidecar_config_path(["python3", "serve.py", "sidecar"]) is None


def test_config_parsing_takes_name_and_version_and_refuses_the_rest() -> None:
    assert model_in_config("model: {name: fraud, version: 7}\n") == ModelRef("fraud", "7")
    assert model_in_config("model: {name: fraud}\n") is None
    assert model_in_config("- a list\n") is None
    assert model_in_config("model: [unclosed\n") is None


def test_pods_are_named_by_their_sidecars(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    add_injected_sidecar(proc, 700, POD_A, "fraud", "7")
    add_injected_sidecar(proc, 701, POD_B, "churn", "3")
    add_process(proc, 576, POD_A, "a" * 64, ["python3", "serve.py"])
    (proc / "self").mkdir()  # non-numeric entries of /proc are not processes
    models = SidecarModels(proc, clock=FakeClock())
    assert models(POD_A) == ModelRef("fraud", "7")
    assert models(POD_B) == ModelRef("churn", "3")
    assert models("pid:42") is None and models("") is None
    assert models.scans == 1


def test_a_relative_config_path_is_read_from_the_process_working_directory(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    process = add_process(proc, 800, POD_A, "c" * 64, ["model-health", "sidecar", "--config", "conf/sidecar.yaml"])
    (process / "cwd" / "conf").mkdir(parents=True)
    (process / "cwd" / "conf" / "sidecar.yaml").write_text("model: {name: fraud, version: '7'}\n")
    assert SidecarModels(proc, clock=FakeClock())(POD_A) == ModelRef("fraud", "7")


def test_scans_are_rate_limited_and_a_refresh_forgets_gone_pods(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    add_injected_sidecar(proc, 700, POD_A, "fraud", "7")
    clock = FakeClock()
    models = SidecarModels(proc, rescan_seconds=30, refresh_seconds=600, clock=clock)
    assert models(POD_A) == ModelRef("fraud", "7")
    assert models(POD_B) is None and models.scans == 1  # unknown, but scanned a moment ago
    add_injected_sidecar(proc, 701, POD_B, "churn", "3")  # pod B starts
    clock.advance(10)
    assert models(POD_B) is None and models.scans == 1
    clock.advance(25)
    assert models(POD_B) == ModelRef("churn", "3") and models.scans == 2
    for _ in range(100):
        models(POD_A)
        models(POD_B)
    assert models.scans == 2  # known pods cost nothing
    shutil.rmtree(proc / "700")  # pod A is gone
    clock.advance(600)
    assert models(POD_A) is None and models.scans == 3


def test_an_unreadable_sidecar_config_leaves_the_pod_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the kernel answers a node agent with another UID than the sidecar's: EACCES on
    /proc/<pid>/root (as root here, the refusal is made by hand)."""
    proc = tmp_path / "proc"
    add_injected_sidecar(proc, 700, POD_A, "fraud", "7")
    add_injected_sidecar(proc, 701, POD_B, "churn", "3")
    import exporter.gpu.pod_models as pod_models

    real_read = pod_models._read

    def refuse_pod_a_root(path: Path) -> bytes:
        if str(path).startswith(str(proc / "700" / "root")):
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(pod_models, "_read", refuse_pod_a_root)
    models = SidecarModels(proc, clock=FakeClock())
    with caplog.at_level(logging.WARNING):
        assert models(POD_A) is None
    assert models(POD_B) == ModelRef("churn", "3")
    assert caplog.text.count("cannot read the config") == 1 and "pid 700" in caplog.text
