"""whylogs 1.6's environment for benchmarks/versus_whylogs.py: built on demand, never by the tests.

whylogs 1.6.4 needs numpy<2 (and so pyarrow<20), which the project's environment cannot
take, so it gets its own, ``.venv-whylogs`` at the repository root, built from
``requirements-whylogs.txt`` beside this file (``tests/support/side_env.py``, as the NannyML
oracle's), but built by the benchmark (``make bench-whylogs``), not by ``make test``.
whylogs's usage statistics are switched off for every run (``WHYLOGS_NO_ANALYTICS``): the
benchmark sends nothing anywhere.

``MODEL_HEALTH_WHYLOGS_VENV`` puts the environment elsewhere.

    python benchmarks/whylogs_env.py    # build the environment, print its interpreter
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's modules

from tests.support.side_env import SideEnv  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIREMENTS = HERE / "requirements-whylogs.txt"
ENV_DIR = Path(os.environ.get("MODEL_HEALTH_WHYLOGS_VENV", ROOT / ".venv-whylogs"))
ENV = SideEnv(ENV_DIR, REQUIREMENTS, pip_args=("--no-deps",))
# whylogs reads this at import and then never reports usage (whylogs/api/usage_stats).
RUN_ENV = {"WHYLOGS_NO_ANALYTICS": "True"}


class WhylogsEnvError(RuntimeError):
    """The whylogs environment could not be built."""


def python() -> Path:
    return ENV.python


def ensure_env() -> Path:
    """Build the environment unless it is already built from these requirements."""
    return ENV.ensure(WhylogsEnvError)


def run_environment() -> dict[str, str]:
    """The environment whylogs runs under: this process's, analytics off, no project paths."""
    env = {**os.environ, **RUN_ENV}
    env.pop("PYTHONPATH", None)
    return env


if __name__ == "__main__":
    print(ensure_env())
    sys.exit(0)
