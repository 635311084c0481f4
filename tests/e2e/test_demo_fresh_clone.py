"""``make demo`` from a fresh clone, in a new virtual environment, reaches a drifted state.

The proof that the demo needs nothing installed by hand: the committed ``HEAD`` of this
checkout is cloned into a temporary directory and ``make demo`` runs there exactly as a
new user would run it — it creates ``.venv`` inside the clone with ``python3 -m venv``,
installs the project with its ``broker`` extra (pip uses its local wheel cache and the
indexes it is configured with, as on any machine), and then plays the scenario, shortened
and headless through ``DEMO_ARGS``. Nothing of this test's own environment is passed on:
not its virtual environment (its ``bin`` leaves ``PATH``), nor ``MODEL_HEALTH_*`` settings.

The JSON summary the demo prints last must say that drift was reached on exactly the
drifted features. The time each stage took is printed, not asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO_ARGS = "--headless --until-drift --drift-after 8 --window-seconds 10 --rate 400 --duration 150 --port 0"
# Bounds for a stuck run, not the expected time (about a minute with a warm pip cache).
CLONE_TIMEOUT_S = 120
MAKE_TIMEOUT_S = 900


def _clean_env() -> dict[str, str]:
    """This process's environment without its virtual environment or model-health settings."""
    ours = Path(sys.prefix)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith("MODEL_HEALTH_")
        # Under `make test` these make the nested `make demo` a sub-make that prints its directory.
        and key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKELEVEL", "MAKEFLAGS", "MFLAGS")
    }
    path = [
        part
        for part in env.get("PATH", "").split(os.pathsep)
        if part and Path(part).resolve() != (ours / "bin").resolve()
    ]
    env["PATH"] = os.pathsep.join(path)
    return env


def test_make_demo_in_a_fresh_clone_reaches_drift(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None or subprocess.run([git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout with a commit: there is no HEAD to clone")
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    env = _clean_env()
    assert shutil.which("python3", path=env["PATH"]), "python3 must be on PATH, as `make demo` calls it"

    clone = tmp_path / "clone"
    started = time.monotonic()
    subprocess.run([git, "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=CLONE_TIMEOUT_S, env=env)
    cloned = time.monotonic()
    assert not (clone / ".venv").exists()

    out = tmp_path / "demo"
    run = subprocess.run(
        [make, "--no-print-directory", "demo", f"DEMO_ARGS={DEMO_ARGS} --out {out}"],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
    )
    finished = time.monotonic()
    output = run.stdout + run.stderr
    log = (out / "demo.log").read_text(errors="replace")[-3000:] if (out / "demo.log").exists() else "(no demo log)"
    assert run.returncode == 0, f"make demo failed ({run.returncode}):\n{output[-6000:]}\n--- demo.log ---\n{log}"

    # The environment is the new one, with the clone's code installed into it.
    python = clone / ".venv" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import exporter; print(exporter.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(clone), where.stdout + where.stderr
    installed = (clone / ".venv" / ".installed-demo").stat().st_mtime

    summary = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["reached_drift"] is True, f"{summary}\n--- demo.log ---\n{log}"
    assert summary["drifted"] == summary["expected_drifted"] == ["cat_0", "num_00", "num_01"]
    assert summary["served"] > 0 and summary["labels_joined"] > 0
    bootstrap = installed - (time.time() - (finished - cloned))
    print(
        f"fresh clone: git clone {cloned - started:.1f}s, venv + pip install about {bootstrap:.0f}s, "
        f"demo until drift {summary['elapsed_seconds']:.0f}s after traffic began; make demo {finished - cloned:.0f}s in all"
    )
