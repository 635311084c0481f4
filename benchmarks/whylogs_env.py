"""whylogs 1.6's environment for benchmarks/versus_whylogs.py: built on demand, never by the tests.

whylogs 1.6.4 needs numpy<2 (and so pyarrow<20), which the project's environment cannot
take, so it gets its own, ``.venv-whylogs`` at the repository root, built from
``requirements-whylogs.txt`` beside this file — the same arrangement as the NannyML oracle
(``tests/detectors/oracle/nannyml_env.py``), but built by the benchmark (``make
bench-whylogs``), not by ``make test``. A file lock makes concurrent builds wait for one.
whylogs's usage statistics are switched off for every run (``WHYLOGS_NO_ANALYTICS``): the
benchmark sends nothing anywhere.

``MODEL_HEALTH_WHYLOGS_VENV`` puts the environment elsewhere.

    python benchmarks/whylogs_env.py    # build the environment, print its interpreter
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIREMENTS = HERE / "requirements-whylogs.txt"
ENV_DIR = Path(os.environ.get("MODEL_HEALTH_WHYLOGS_VENV", ROOT / ".venv-whylogs"))
STAMP = ENV_DIR / ".installed"
BUILD_TIMEOUT_S = 1800
# whylogs reads this at import and then never reports usage (whylogs/api/usage_stats).
RUN_ENV = {"WHYLOGS_NO_ANALYTICS": "True"}


class WhylogsEnvError(RuntimeError):
    """The whylogs environment could not be built."""


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(ENV_DIR.parent / ".venv-whylogs.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def python() -> Path:
    return ENV_DIR / "bin" / "python"


def ensure_env() -> Path:
    """Build the environment unless it is already built from these requirements."""
    with _locked():
        if STAMP.exists() and STAMP.read_text().strip() == _digest() and python().exists():
            return python()
        shutil.rmtree(ENV_DIR, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(ENV_DIR)
        command = [str(python()), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(REQUIREMENTS)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            raise WhylogsEnvError(f"building {ENV_DIR} failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
        STAMP.write_text(_digest() + "\n")
        return python()


def run_environment() -> dict[str, str]:
    """The environment whylogs runs under: this process's, analytics off, no project paths."""
    env = {**os.environ, **RUN_ENV}
    env.pop("PYTHONPATH", None)
    return env


if __name__ == "__main__":
    print(ensure_env())
    sys.exit(0)
