"""The NannyML oracle: its virtual environment and its cached run.

NannyML 0.13 cannot live in the project's environment (its dependencies downgrade
botocore below what boto3 and moto need), so it gets its own, ``.venv-nannyml`` at the
repository root, built from ``requirements-nannyml.txt`` beside this file. A test session
builds it when it is missing or its requirements changed (``make test`` builds it first);
a build or run that fails fails the tests that need it: CI never skips the oracle.

The run itself (``nannyml_cbpe.py`` in that environment, ~30 s) is cached on disk under
``.venv-nannyml/runs/<hash of the requirements and the script>/``, so only the first
session after a change pays for it. A file lock makes parallel test workers wait for one
build and one run instead of racing.

``MODEL_HEALTH_NANNYML_VENV`` puts the environment elsewhere (a CI cache, say).

    python -m tests.detectors.oracle.nannyml_env            # build the environment
    python -m tests.detectors.oracle.nannyml_env --warm     # build it and run the oracle (cached)
    python -m tests.detectors.oracle.nannyml_env --run DIR  # and copy a fresh run's output to DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.side_env import SideEnv, digest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
REQUIREMENTS = HERE / "requirements-nannyml.txt"
SCRIPT = HERE / "nannyml_cbpe.py"
ENV_DIR = Path(os.environ.get("MODEL_HEALTH_NANNYML_VENV", ROOT / ".venv-nannyml"))
ENV = SideEnv(ENV_DIR, REQUIREMENTS)
RUN_TIMEOUT_S = 600


class OracleError(RuntimeError):
    """The oracle environment could not be built or its run failed."""


def python() -> Path:
    return ENV.python


def ensure_env() -> Path:
    """Build the oracle environment unless it is already built from these requirements."""
    return ENV.ensure(OracleError)


def oracle_run() -> Path:
    """The directory holding ``cbpe.json`` and the datasets, running NannyML if not cached."""
    interpreter = ensure_env()
    out = ENV_DIR / "runs" / digest(REQUIREMENTS, SCRIPT)
    with ENV.locked():
        if (out / "cbpe.json").exists():
            return out
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "PYTHONWARNINGS": "ignore"}
        env.pop("PYTHONPATH", None)
        done = subprocess.run(
            [str(interpreter), str(SCRIPT), str(partial)],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env=env,
            cwd=ROOT,
        )
        if done.returncode != 0 or not (partial / "cbpe.json").exists():
            raise OracleError(f"the NannyML oracle run failed:\n{done.stderr[-4000:]}")
        partial.rename(out)
        return out


def load_results() -> tuple[Path, dict]:
    out = oracle_run()
    return out, json.loads((out / "cbpe.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="also run the oracle and copy its output here")
    parser.add_argument("--warm", action="store_true", help="also run the oracle, so the tests find it cached")
    args = parser.parse_args(argv)
    print(f"NannyML oracle environment: {ensure_env()}")
    if args.warm:
        print(f"NannyML oracle run: {oracle_run()}")
    if args.run:
        out = oracle_run()
        shutil.copytree(out, args.run, dirs_exist_ok=True)
        print(f"NannyML oracle run: {out} → {args.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
