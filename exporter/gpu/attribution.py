"""Which pod and container a GPU process belongs to, read from ``/proc/<pid>/cgroup``.

NVML lists a GPU's compute processes by host PID. On a node agent that sees host PIDs (a
DaemonSet with ``hostPID: true``, or the host's ``/proc`` mounted and named as
``proc_root``), the kubelet's cgroup layout names the pod UID and the container ID in the
process's cgroup path. Every layout in use is handled:

- cgroup v2 (one ``0::<path>`` line) and v1 (one ``id:controllers:<path>`` line per
  hierarchy; the first line that names a pod wins);
- the systemd cgroup driver, where the pod is a slice whose UID has ``_`` for ``-``::

      /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b…_5c6d.slice/cri-containerd-<id>.scope
      /kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope            (guaranteed QoS)
      /kubelet.slice/kubelet-kubepods.slice/…-pod<uid>.slice/docker-<id>.scope  (kind)

- the cgroupfs driver: ``/kubepods/burstable/pod<uid>/<id>``, ``/kubepods/pod<uid>/<id>``;
- any runtime prefix on the container scope (``cri-containerd-``, ``crio-``, ``docker-``,
  ``libpod-`` …) and sub-cgroups below it (``…/crio-<id>.scope/container``);
- paths relative to the agent's own cgroup namespace (``/../../kubepods-…-pod<uid>.slice/…``).

The container ID is the bare 64-hex ID, without the ``containerd://`` scheme Kubernetes
puts in ``containerStatuses[].containerID``. Anything unrecognised, a process that has
exited, or a file that cannot be read gives empty labels, never an error: attribution is a
best effort beside the reading itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A pod UID is a UUID; static (mirror) pods use a 32-hex config hash instead.
_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
_POD_SYSTEMD = re.compile(rf"^(?:[A-Za-z0-9]+-)*pod({_UID})\.slice$")
_POD_CGROUPFS = re.compile(rf"^pod({_UID})$")
_CONTAINER = re.compile(r"^(?:[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*-)?([0-9a-f]{64})(?:\.scope)?$")
# Largest cgroup file read; real ones are a few hundred bytes even with 13 v1 hierarchies.
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class PodRef:
    """The pod and container of a process; empty strings when unknown."""

    pod_uid: str = ""
    container_id: str = ""


UNKNOWN = PodRef()


def parse_cgroup_path(path: str) -> PodRef:
    """Pod UID and container ID named by one cgroup path.

    >>> parse_cgroup_path("/kubepods/besteffort/pod0e7c3a52-5b8e-4b6e-9a4c-2f1d3e4a5b6c/" + "ab" * 32)
    PodRef(pod_uid='0e7c3a52-5b8e-4b6e-9a4c-2f1d3e4a5b6c', container_id='abababababababababababababababababababababababababababababababab')
    """
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    pod_uid = ""
    pod_at = -1
    for position, part in enumerate(parts):
        found = _POD_SYSTEMD.match(part) or _POD_CGROUPFS.match(part)
        if found:
            pod_uid = found.group(1).replace("_", "-").lower()
            pod_at = position
    container_id = ""
    for part in parts[pod_at + 1 :]:
        found = _CONTAINER.match(part)
        if found:
            # The first container-shaped component below the pod: deeper ones are a
            # runtime's own sub-cgroups (crun's ``container``) or nested containers.
            container_id = found.group(1)
            break
    return PodRef(pod_uid, container_id)


def parse_cgroup_file(text: str) -> PodRef:
    """Pod and container from a whole ``/proc/<pid>/cgroup`` file (v1 or v2)."""
    best = UNKNOWN
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        ref = parse_cgroup_path(fields[2])
        if ref.pod_uid:
            return ref
        if ref.container_id and not best.container_id:
            best = ref  # a container outside Kubernetes (plain Docker): keep, but keep looking
    return best


class PodAttributor:
    """``attributor(pid)`` → the pod and container of host PID ``pid``, read under ``proc_root``."""

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self._proc_root = Path(proc_root)

    @property
    def proc_root(self) -> Path:
        return self._proc_root

    def __call__(self, pid: int) -> PodRef:
        if pid <= 0:
            return UNKNOWN
        try:
            with open(self._proc_root / str(pid) / "cgroup", "rb") as handle:
                data = handle.read(_MAX_BYTES)
        except OSError:
            # Exited since NVML listed it, or not visible from here: no labels, no error.
            return UNKNOWN
        return parse_cgroup_file(data.decode("utf-8", errors="replace"))
