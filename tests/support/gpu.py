"""GPU test helpers: where the recorded H200 capture is, a hand-moved clock, scrape parsing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.gpu.fake import DEFAULT_FIXTURES

REPO = Path(__file__).resolve().parents[2]


def capture_dir() -> Path:
    """The recorded H200 capture: the copy vendored with exporter.gpu (``exporter/gpu/fixtures/h200``).

    Tests never read outside the repository; ``tests/exporter/gpu/test_fake.py`` pins the copy's
    checksums so it stays the recorded capture byte for byte.
    """
    return DEFAULT_FIXTURES


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(registry: CollectorRegistry) -> Samples:
    """{sample name: {sorted label pairs: value}} from a real text-format scrape."""
    text = generate_latest(registry).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def only(samples: Samples, name: str) -> float:
    """The value of the one sample called ``name``."""
    series = samples.get(name, {})
    assert len(series) == 1, f"{name}: expected one series, got {series}"
    return next(iter(series.values()))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; a generous timeout, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(0.005)


# ---------------------------------------------------------------------------------------------
# A node's /proc as the GPU node agent sees it (hostPID): model-server processes in pods, and
# each injected pod's model-health sidecar, whose config names the pod's model.


def cgroup_line(pod_uid: str, container_id: str) -> str:
    """A cgroup v2 line as the systemd driver with containerd writes it for a burstable pod."""
    slice_uid = pod_uid.replace("-", "_")
    return (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{slice_uid}.slice/"
        f"cri-containerd-{container_id}.scope\n"
    )


def add_process(proc_root: Path, pid: int, pod_uid: str, container_id: str, argv: list[str]) -> Path:
    """``<proc_root>/<pid>/{cgroup,cmdline}`` of one process; returns its directory."""
    process = proc_root / str(pid)
    process.mkdir(parents=True)
    (process / "cgroup").write_text(cgroup_line(pod_uid, container_id))
    (process / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")
    return process


def add_injected_sidecar(proc_root: Path, pid: int, pod_uid: str, model: str, version: str) -> Path:
    """The sidecar the injector adds to a pod serving ``model`` ``version``: its command line is the
    injected container's command as run by the image's console script (the kernel shows the
    interpreter first), and its root holds the config the injector generated, where the
    downward-API volume mounts it."""
    import yaml

    from exporter.config import InjectedSidecarConfig
    from exporter.injector.identity import ModelIdentity
    from exporter.injector.mutation import sidecar_config, sidecar_container

    injected = InjectedSidecarConfig()
    command = sidecar_container(injected)["command"]
    argv = ["/usr/local/bin/python3.11", "/usr/local/bin/" + command[0], *command[1:]]
    process = add_process(proc_root, pid, pod_uid, f"{pid:064x}", argv)
    config = sidecar_config(ModelIdentity(model, version, "annotation", True), "models", "off", injected)
    path = process / "root" / command[-1].lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # as the injector writes the annotation
    return process
