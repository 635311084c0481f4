"""A pinned virtual environment beside the project's, for a tool that cannot live in it.

NannyML 0.13 (the CBPE oracle, ``tests/detectors/oracle/nannyml_env.py``) and whylogs 1.6
(``benchmarks/whylogs_env.py``) pin dependencies the project's environment cannot take, so
each gets its own, built from a requirements file. It is rebuilt only when that file changes
(its digest is stamped into the environment), and a file lock beside it makes concurrent
builders — parallel test workers — wait for one build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def digest(*paths: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the files' bytes, in order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class SideEnv:
    directory: Path
    requirements: Path
    pip_args: tuple[str, ...] = ()  # besides ``-r requirements``
    build_timeout_s: float = 1800

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.directory / ".installed"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with open(self.directory.parent / f"{self.directory.name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def built(self) -> bool:
        return (
            self.stamp.exists() and self.stamp.read_text().strip() == digest(self.requirements) and self.python.exists()
        )

    def ensure(self, error: type[Exception]) -> Path:
        """Its interpreter, building the environment first unless it is built from these
        requirements; ``error`` (with pip's output) when the build fails."""
        with self.locked():
            if self.built():
                return self.python
            shutil.rmtree(self.directory, ignore_errors=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(self.directory)
            command = [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                *self.pip_args,
                "-r",
                str(self.requirements),
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=self.build_timeout_s)
            if done.returncode != 0:
                raise error(f"building {self.directory} failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
            self.stamp.write_text(digest(self.requirements) + "\n")
            return self.python
