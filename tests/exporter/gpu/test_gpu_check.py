"""``benchmarks/gpu_check.py --dry-run``: the device check's whole code path, without a GPU."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

from tests.support.gpu import REPO


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_nvidia_smi_parsing() -> None:
    check = load_check()
    gpus = check.parse_smi_gpus("GPU-abc, 99, 1010, 143771, 692.35, 55, 1500\nGPU-def, [N/A], 0, 1, 2, 3, 4\n")
    assert gpus["GPU-abc"] == {
        "utilization.gpu": 99.0,
        "memory.used": 1010.0,
        "memory.total": 143771.0,
        "power.draw": 692.35,
        "temperature.gpu": 55.0,
        "clocks.sm": 1500.0,
    }
    assert gpus["GPU-def"]["utilization.gpu"] is None
    assert check.parse_smi_apps("576, 1002\n577, [N/A]\nNo running processes found\n") == {576: 1002.0}


def test_dry_run_compares_every_phase(tmp_path: Path) -> None:
    check = load_check()
    # 5 s a phase: the shared one holds three or four observations, so the energy counter (read
    # every second) moves between its first and last even on a loaded machine.
    assert check.main(["--dry-run", "--seconds", "25", "--interval", "0.2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry_run"] is True and result["device"]["name"] == "NVIDIA H200"
    compared = [row for row in result["rows"] if "within" in row]
    assert {row["phase"] for row in compared} == set(check.PHASES)
    # The fake's "nvidia-smi" renders the same trace row: every comparison must agree.
    assert all(row["within"] for row in compared), [row for row in compared if not row["within"]]
    # The recorded heavy phase reads 97–100 %.
    assert re.search(r"\| saturated \| utilization \(%\) \| (9[7-9]|100)\.", (tmp_path / "gpu_check.md").read_text())
    assert result["timing"]["slow_read_ms"] > result["timing"]["fast_read_ms"]
    # Attribution over the shared phase: the two models' energy is the device's, split.
    attribution = result["attribution"]
    assert set(attribution["model_joules"]) == {check.MODEL_A, check.MODEL_B}
    assert attribution["model_joules"][check.MODEL_B] > 0
    assert attribution["checks"]["models sum to the device energy (±1 %)"] is True
    assert "Attribution (shared phase)" in (tmp_path / "gpu_check.md").read_text()


def test_pmon_parsing() -> None:
    check = load_check()
    text = (
        "# gpu         pid   type     sm    mem    enc    dec    jpg    ofa    command\n"
        "# Idx           #    C/G      %      %      %      %      %      %    name\n"
        "    0       4242     C     71     18      -      -      -      -    python3\n"
        "    0       4243     C     23      6      -      -      -      -    python3\n"
        "    0       4244     C      -      -      -      -      -      -    python3\n"
    )
    assert check.parse_pmon(text) == {4242: 71.0, 4243: 23.0}
