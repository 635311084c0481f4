"""MIG: what NVML gives per MIG device is exported; what it cannot give is absent, not 0."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from exporter.gpu import GpuCollector, GpuSampler, NvmlReader
from exporter.gpu import nvml as N
from exporter.gpu.fake import Capture, FakeNvml, MigInstance
from tests.support.gpu import FakeClock, Samples, only, scrape

GB = 10**9
LAYOUT = (
    MigInstance(
        gpu_instance_id=1,
        compute_instance_id=0,
        memory_total_bytes=35 * GB,
        memory_used_bytes=10 * GB,
        processes=((1001, 9 * GB),),
    ),
    MigInstance(
        gpu_instance_id=2,
        compute_instance_id=0,
        memory_total_bytes=71 * GB,
        memory_used_bytes=20 * GB,
        processes=((1002, 19 * GB),),
    ),
)


def sampled(fake: FakeNvml) -> Samples:
    clock = FakeClock()
    sampler = GpuSampler(NvmlReader(fake), interval_seconds=1, slow_interval_seconds=15, clock=clock)
    sampler.sample_once()
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, clock=clock))
    return scrape(registry)


def test_mig_devices_and_their_memory(capture: Capture) -> None:
    fake = FakeNvml(capture, mig=LAYOUT)
    fake.seek_phase("heavy")
    samples = sampled(fake)
    assert only(samples, "model_health_gpu_collector_up") == 1
    assert only(samples, "model_health_gpu_mig_enabled") == 1
    used = {
        (labels["gpu_instance_id"], labels["compute_instance_id"]): (labels["mig_uuid"], value)
        for labels, value in ((dict(k), v) for k, v in samples["model_health_gpu_mig_memory_used_bytes"].items())
    }
    assert {key: value for key, (_, value) in used.items()} == {("1", "0"): 10 * GB, ("2", "0"): 20 * GB}
    assert all(uuid.startswith("MIG-") for uuid, _ in used.values())
    total = {dict(k)["gpu_instance_id"]: v for k, v in samples["model_health_gpu_mig_memory_total_bytes"].items()}
    assert total == {"1": 35 * GB, "2": 71 * GB}
    # The board's own readings still come; utilization does not exist on a MIG-enabled GPU.
    assert "model_health_gpu_utilization_ratio" not in samples
    assert "model_health_gpu_memory_utilization_ratio" not in samples
    assert only(samples, "model_health_gpu_power_watts") == pytest.approx(fake.current_row().power_mw / 1000)
    assert only(samples, "model_health_gpu_memory_used_bytes") == 30 * GB
    processes = {dict(k)["pid"]: v for k, v in samples["model_health_gpu_process_memory_used_bytes"].items()}
    assert processes == {"1001": 9 * GB, "1002": 19 * GB}
    assert "model_health_gpu_process_utilization_ratio" not in samples


def test_processes_from_mig_devices_when_the_parent_refuses(capture: Capture) -> None:
    fake = FakeNvml(capture, mig=LAYOUT)
    original = fake.nvmlDeviceGetComputeRunningProcesses

    def unprivileged(handle: object) -> list[object]:
        if getattr(handle, "mig", None) is None:
            raise N.error(N.ERROR_NO_PERMISSION)  # what an unprivileged caller gets from the parent
        return original(handle)

    fake.nvmlDeviceGetComputeRunningProcesses = unprivileged  # type: ignore[method-assign]
    samples = sampled(fake)
    processes = {dict(k)["pid"]: v for k, v in samples["model_health_gpu_process_memory_used_bytes"].items()}
    assert processes == {"1001": 9 * GB, "1002": 19 * GB}
    assert only(samples, "model_health_gpu_collector_up") == 1


def test_mig_layout_is_reread_on_the_slow_interval(capture: Capture) -> None:
    fake = FakeNvml(capture, mig=LAYOUT)
    clock = FakeClock()
    sampler = GpuSampler(NvmlReader(fake), interval_seconds=1, slow_interval_seconds=5, clock=clock)
    for _ in range(6):
        sampler.sample_once()
        clock.advance(1)
    assert fake.calls["nvmlDeviceGetMigMode"] == 2  # t = 0 and t = 5
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == 6 * len(LAYOUT)  # MIG memory every interval


def test_no_mig_is_mig_enabled_zero(capture: Capture) -> None:
    samples = sampled(FakeNvml(capture))
    assert only(samples, "model_health_gpu_mig_enabled") == 0
    assert "model_health_gpu_mig_memory_used_bytes" not in samples
