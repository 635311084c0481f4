"""Which model a pod serves, as the node agent finds out: from the pod's own model-health sidecar.

The node agent knows a GPU process's pod (its cgroup, ``attribution.py``) but not the model the
pod serves, and it does not talk to the Kubernetes API (the chart gives no component a token).
What it already sees with ``hostPID`` is every process of the node, the injected sidecars
included, and each sidecar's config names its model: the injector writes it to the pod's
``model-health.io/sidecar-config`` annotation and mounts it through the downward API as
``/etc/model-health/sidecar/config.yaml`` — the ``--config`` the sidecar runs with.

So, for a pod it does not know yet, :class:`SidecarModels` scans ``<proc_root>/*/cmdline`` for
``model-health sidecar --config PATH`` (as a console script the kernel shows it as
``python …/model-health sidecar …``), reads that process's cgroup for its pod UID, and reads
``PATH`` inside the sidecar's own filesystem, ``<proc_root>/<pid>/root/PATH``. The kernel
allows that to a process with the same UID as the sidecar (the chart runs the node agent and
the injected sidecars as 10001) or with ``CAP_SYS_PTRACE``; otherwise the pod's model stays
unknown and its share of the GPU unattributed, and the agent says so once in its log.

Scans are rate-limited (at most one per ``rescan_seconds`` while some pod is unknown, and one per
``refresh_seconds`` regardless, which also forgets pods that are gone); each scan replaces what
was known. Reading stops at any error for that one process: a process that exits mid-scan is
simply not a sidecar.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from exporter.gpu.attribution import parse_cgroup_file
from exporter.gpu.energy import ModelRef

log = logging.getLogger(__name__)

# The sidecar's command as the injector writes it (``exporter/injector/mutation.py``).
COMMAND = "model-health"
ROLE = "sidecar"
CONFIG_FLAG = "--config"
# Largest cmdline and config file read; the injected config is well under 2 KiB.
_MAX_BYTES = 256 * 1024


def sidecar_config_path(argv: list[str]) -> str | None:
    """The ``--config`` of a ``model-health sidecar`` command line, or None for anything else.

    >>> sidecar_config_path(["/usr/bin/python3", "/usr/local/bin/model-health", "sidecar", "--config", "/c.yaml"])
    '/c.yaml'
    >>> sidecar_config_path(["model-health", "aggregator", "--config", "/c.yaml"]) is None
    True
    """
    for position, arg in enumerate(argv[:-1]):
        if os.path.basename(arg) == COMMAND and argv[position + 1] == ROLE:
            rest = argv[position + 2 :]
            for index, option in enumerate(rest):
                if option == CONFIG_FLAG and index + 1 < len(rest):
                    return rest[index + 1]
                if option.startswith(CONFIG_FLAG + "="):
                    return option.split("=", 1)[1]
            return None
    return None


def model_in_config(text: str) -> ModelRef | None:
    """``model.name`` and ``model.version`` of a sidecar config file, or None."""
    import yaml  # the node agent's dependency; the rest of exporter.gpu runs without it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("name") in (None, "") or model.get("version") in (None, ""):
        return None
    return ModelRef(str(model["name"]), str(model["version"]))


class SidecarModels:
    """``models(pod_uid)`` → the model the pod's sidecar serves, or None."""

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        *,
        rescan_seconds: float = 30.0,
        refresh_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._proc_root = Path(proc_root)
        self._rescan = rescan_seconds
        self._refresh = refresh_seconds
        self._clock = clock
        self._known: dict[str, ModelRef] = {}
        self._scanned_at: float | None = None
        self._unreadable_noted = False
        self.scans = 0

    def __call__(self, pod_uid: str) -> ModelRef | None:
        if pod_uid.startswith("pid:") or not pod_uid:
            return None  # a process outside any pod
        now = self._clock()
        age = None if self._scanned_at is None else now - self._scanned_at
        if age is None or age >= self._refresh or (pod_uid not in self._known and age >= self._rescan):
            self._scan(now)
        return self._known.get(pod_uid)

    def _scan(self, now: float) -> None:
        self._scanned_at = now
        self.scans += 1
        found: dict[str, ModelRef] = {}
        unreadable = []
        try:
            entries = [entry.name for entry in os.scandir(self._proc_root) if entry.name.isdigit()]
        except OSError as error:
            log.warning("cannot list %s to find model-health sidecars: %s", self._proc_root, error)
            return
        for pid in entries:
            process = self._proc_root / pid
            try:
                argv = _read(process / "cmdline").split(b"\0")
            except OSError:
                continue  # exited, or hidden from us: not a sidecar we can use
            path = sidecar_config_path([arg.decode(errors="replace") for arg in argv if arg])
            if path is None:
                continue
            try:
                pod = parse_cgroup_file(_read(process / "cgroup").decode(errors="replace")).pod_uid
                if not pod:
                    continue
                base = process / ("root" if path.startswith("/") else "cwd")
                text = _read(base / path.lstrip("/")).decode(errors="replace")
            except PermissionError:
                unreadable.append(pid)
                continue
            except OSError:
                continue  # exited, or not ours to read
            model = model_in_config(text)
            if model is not None:
                found[pod] = model
        if unreadable and not self._unreadable_noted:
            self._unreadable_noted = True
            log.warning(
                "cannot read the config of %d model-health sidecar(s) (e.g. pid %s) under %s: run the node agent "
                "as the sidecars' UID or give it CAP_SYS_PTRACE; their pods' GPU energy stays unattributed",
                len(unreadable),
                unreadable[0],
                self._proc_root,
            )
        self._known = found


def _read(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(_MAX_BYTES)
