"""Pod attribution from /proc/<pid>/cgroup, on fake /proc trees, for every kubelet layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.config import GpuConfig
from exporter.gpu import start_gpu_collector
from exporter.gpu.attribution import UNKNOWN, PodAttributor, PodRef, parse_cgroup_file
from exporter.gpu.fake import Capture, FakeNvml
from tests.support.gpu import scrape

UID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SYSTEMD_UID = UID.replace("-", "_")
CID = "4f9c0b7e" * 8  # 64 hex
POD = PodRef(UID, CID)

V1_CGROUPFS = "\n".join(
    [
        f"12:memory:/kubepods/burstable/pod{UID}/{CID}",
        f"11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}",
        f"1:name=systemd:/kubepods/burstable/pod{UID}/{CID}",
        "0::/",
    ]
)

CASES = {
    "v2 systemd containerd burstable": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
        POD,
    ),
    "v2 systemd containerd guaranteed": (
        f"0::/kubepods.slice/kubepods-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
        POD,
    ),
    "v2 systemd cri-o besteffort": (
        f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SYSTEMD_UID}.slice/crio-{CID}.scope",
        POD,
    ),
    "v2 systemd cri-o with crun sub-cgroup": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/crio-{CID}.scope/container",
        POD,
    ),
    "v2 systemd docker (cri-dockerd)": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/docker-{CID}.scope",
        POD,
    ),
    "v2 kind (kubelet.slice)": (
        f"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
        f"kubelet-kubepods-besteffort-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
        POD,
    ),
    "v2 relative to the agent's cgroup namespace": (
        f"0::/../../kubepods-besteffort-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
        POD,
    ),
    "v2 cgroupfs": (f"0::/kubepods/besteffort/pod{UID}/{CID}", POD),
    "v2 cgroupfs guaranteed": (f"0::/kubepods/pod{UID}/{CID}", POD),
    "v1 cgroupfs, several hierarchies": (V1_CGROUPFS, POD),
    "v1 systemd containerd": (
        f"5:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope\n"
        f"1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice/cri-containerd-{CID}.scope",
        POD,
    ),
    "v1, pod only in a later line": (f"3:pids:/\n2:memory:/kubepods/pod{UID}/{CID}", POD),
    "static pod (32-hex config hash)": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{'d' * 32}.slice/cri-containerd-{CID}.scope",
        PodRef("d" * 32, CID),
    ),
    "pod slice, process not in a container scope": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SYSTEMD_UID}.slice",
        PodRef(UID, ""),
    ),
    "plain docker outside Kubernetes": (f"0::/system.slice/docker-{CID}.scope", PodRef("", CID)),
    "docker cgroupfs outside Kubernetes": (f"13:memory:/docker/{CID}", PodRef("", CID)),
    "host service": ("0::/system.slice/nvidia-persistenced.service", UNKNOWN),
    "user session": ("0::/user.slice/user-1000.slice/session-3.scope", UNKNOWN),
    "root cgroup": ("0::/", UNKNOWN),
    "empty file": ("", UNKNOWN),
    "garbage": ("not a cgroup file\n\x00\x01", UNKNOWN),
}


@pytest.mark.parametrize("text, expected", CASES.values(), ids=CASES.keys())
def test_parse_cgroup_file(text: str, expected: PodRef) -> None:
    assert parse_cgroup_file(text) == expected


def test_upper_case_uid_is_normalised() -> None:
    ref = parse_cgroup_file(f"0::/kubepods/pod{UID.upper()}/{CID}")
    assert ref == POD


def make_proc(root: Path, pid: int, cgroup: str) -> None:
    (root / str(pid)).mkdir(parents=True)
    (root / str(pid) / "cgroup").write_text(cgroup + "\n", encoding="utf-8")


def test_attributor_reads_a_fake_proc_tree(tmp_path: Path) -> None:
    make_proc(tmp_path, 576, CASES["v2 systemd containerd burstable"][0])
    make_proc(tmp_path, 577, V1_CGROUPFS)
    make_proc(tmp_path, 578, "0::/system.slice/sshd.service")
    (tmp_path / "579").mkdir()
    (tmp_path / "579" / "cgroup").mkdir()  # unreadable as a file
    attribute = PodAttributor(tmp_path)
    assert attribute(576) == POD
    assert attribute(577) == POD
    assert attribute(578) == UNKNOWN
    assert attribute(579) == UNKNOWN
    assert attribute(4242) == UNKNOWN  # exited since NVML listed it
    assert attribute(0) == UNKNOWN


def test_node_mode_labels_gpu_processes_with_their_pod(tmp_path: Path, capture: Capture) -> None:
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    [worker] = {p["pid"] for p in fake.current_row().procs}
    make_proc(tmp_path, worker, CASES["v2 systemd cri-o besteffort"][0])
    registry = CollectorRegistry()
    runtime = start_gpu_collector(GpuConfig(mode="node"), registry, nvml=fake, proc_root=tmp_path)
    try:
        assert runtime.wait_for_sample(10)
        series = scrape(registry)["model_health_gpu_process_memory_used_bytes"]
    finally:
        runtime.stop()
    [labels] = [dict(key) for key in series]
    assert labels == {"gpu_uuid": capture.value("uuid"), "pid": str(worker), "pod_uid": UID, "container_id": CID}


def test_sidecar_mode_never_attributes(tmp_path: Path, capture: Capture) -> None:
    # NVML's host PIDs mean nothing in the pod's PID namespace: never look them up there.
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    [worker] = {p["pid"] for p in fake.current_row().procs}
    make_proc(tmp_path, worker, CASES["v2 cgroupfs"][0])
    registry = CollectorRegistry()
    runtime = start_gpu_collector(GpuConfig(mode="sidecar"), registry, nvml=fake, proc_root=tmp_path)
    try:
        assert runtime.wait_for_sample(10)
        series = scrape(registry)["model_health_gpu_process_memory_used_bytes"]
    finally:
        runtime.stop()
    [labels] = [dict(key) for key in series]
    assert labels["pod_uid"] == "" and labels["container_id"] == ""
