"""``model-health`` starts at once: the CLI module and ``--help`` import no heavy library.

Structural, not timed: a fresh interpreter imports :mod:`exporter.cli` (and shows the help
of the top level and of ``drift``), then lists ``sys.modules``. A command imports its
implementation inside its own function, so nothing below may appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Top-level packages (and modules) that only the command using them may import.
HEAVY = (
    "numpy",
    "scipy",
    "pyarrow",
    "pandas",
    "rich",
    "pydantic",
    "pydantic_settings",
    "yaml",
    "prometheus_client",
    "kafka",
    "confluent_kafka",
    "grafanalib",
    "apscheduler",
    "cryptography",
    "cloudevents",
    "google.protobuf",
    "pynvml",
    "jsonpatch",
    "standardwebhooks",
    "importlib.metadata",
    # This project's own heavy layers.
    "detectors",
    "dashboards",
    "alerts",
    "exporter.config",
    "exporter.offline",
    "exporter.aggregator",
    "exporter.sidecar",
    "exporter.pipeline",
    "exporter.report",
    "exporter.gates",
)

PROBE = """
import json, sys
from exporter.cli import main
for argv in ARGV:
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(argvs: list[list[str]]) -> list[str]:
    code = PROBE.replace("ARGV", repr(argvs))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize(
    "argvs",
    [[], [["--help"]], [["drift", "--help"]], [["reference", "build", "--help"], ["aggregator", "--help"]]],
    ids=["import", "help", "drift-help", "other-help"],
)
def test_cli_imports_no_heavy_module(argvs: list[list[str]]) -> None:
    loaded = _loaded(argvs)
    assert "exporter.cli" in loaded and "click" in loaded
    assert _heavy(loaded) == []


def test_the_probe_sees_heavy_imports() -> None:
    """The check above can fail: a command that runs loads what it needs."""
    loaded = _loaded([["drift", "--reference", "/nonexistent.parquet", "--current", "/nonexistent.parquet"]])
    assert {"exporter.offline.drift", "numpy", "pyarrow"} <= set(_heavy(loaded))
    assert "scipy" not in loaded  # a missing file is reported before the statistics are loaded


def test_drift_to_json_loads_neither_pandas_nor_rich(datasets) -> None:
    """pyarrow's dataset layer and its to_numpy import pandas, a rich table rich: neither is needed."""
    loaded = _loaded(
        [
            [
                "drift",
                "--reference",
                str(datasets["reference"]),
                "--current",
                str(datasets["current"]),
                "--format",
                "json",
            ]
        ]
    )
    assert "scipy.stats" in loaded and "exporter.offline.drift" in loaded
    assert [m for m in loaded if m.split(".")[0] in {"pandas", "rich", "pydantic", "yaml"}] == []


def test_drift_against_a_profile_loads_no_scipy(tmp_path: Path) -> None:
    """KS, PSI, χ², JS and their tails come from detectors.kolmogorov and detectors.elementwise:
    a drift job against a profile never pays for importing scipy (~0.7 CPU s)."""
    import pyarrow.parquet as pq

    from detectors.profile import build_profile
    from exporter.demo.synthetic import synthetic_table
    from exporter.profiles import save_profile

    shape = {"numeric": 4, "categorical": 2, "drifted": 3}
    reference = synthetic_table(3_000, seed=1, **shape).drop_columns(["prediction", "label"])
    profile = save_profile(
        build_profile(reference, model="m", model_version="1", created_at=1.0e9), tmp_path / "m.profile.parquet"
    )
    current = tmp_path / "current.parquet"
    pq.write_table(synthetic_table(20_000, seed=2, drift=True, **shape).drop_columns(["prediction", "label"]), current)
    argv = ["drift", "--reference", str(profile), "--current", str(current), "--format", "json"]
    loaded = _loaded([argv])
    assert {"exporter.offline.drift", "detectors.kolmogorov", "detectors.categorical"} <= set(loaded)
    assert [m for m in loaded if m.split(".")[0] == "scipy"] == []


def test_python_dash_m_exporter_is_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith("model-health, version ")
