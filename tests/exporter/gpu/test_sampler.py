"""The sampler: background thread, slow-query cadence, failures logged once, no scrape waits."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.config import GpuConfig
from exporter.gpu import GpuCollector, GpuSampler, NvmlReader, start_gpu_collector
from exporter.gpu import nvml as N
from exporter.gpu.fake import Capture, FakeNvml
from tests.support.gpu import FakeClock, only, scrape, wait_until

UUID = "GPU-c138a879-eaeb-8fbf-35b2-5b26e2820ef1"
GPU = (("gpu", "0"), ("gpu_uuid", UUID))
SAMPLER_LOG = "exporter.gpu.sampler"


def manual(fake: FakeNvml, clock: FakeClock, **kwargs: object) -> tuple[GpuSampler, CollectorRegistry]:
    """A sampler driven by hand (no thread) and a registry with its collector."""
    interval = float(kwargs.pop("interval", 1.0))  # type: ignore[arg-type]
    slow = float(kwargs.pop("slow", 15.0))  # type: ignore[arg-type]
    sampler = GpuSampler(NvmlReader(fake, **kwargs), interval_seconds=interval, slow_interval_seconds=slow, clock=clock)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, clock=clock))
    return sampler, registry


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SAMPLER_LOG and r.levelno == level]


def test_scrape_never_waits_for_a_blocked_sample(capture: Capture) -> None:
    """Structural proof: while an NVML call is stuck, scrapes finish and show the previous sample."""
    fake = FakeNvml(capture)
    fake.seek_phase("idle")
    registry = CollectorRegistry()
    config = GpuConfig(mode="sidecar", interval_seconds=0.02, slow_interval_seconds=1)
    runtime = start_gpu_collector(config, registry, nvml=fake)
    entered, release = threading.Event(), threading.Event()
    try:
        assert runtime.wait_for_sample(10)
        before = runtime.snapshot()
        assert before is not None and before.gpus[0].utilization == 0

        def block(name: str) -> None:
            if name == "nvmlDeviceGetUtilizationRates":
                entered.set()
                release.wait()

        fake.seek_phase("heavy")
        fake.before_call = block
        assert entered.wait(10), "the sampler never reached the blocking call"
        stuck = runtime.snapshot()
        results: list[float] = []

        def scrapes() -> None:
            for _ in range(20):
                results.append(scrape(registry)["model_health_gpu_utilization_ratio"][GPU])

        scraper = threading.Thread(target=scrapes)
        scraper.start()
        scraper.join(10)
        assert not scraper.is_alive(), "a scrape waited on the blocked NVML call"
        # Every scrape served the sample taken before the block; the sampler is still inside NVML.
        assert results == [0.0] * 20
        assert runtime.snapshot() is stuck and not release.is_set()
    finally:
        fake.before_call = None
        release.set()
    try:
        wait_until(lambda: scrape(registry)["model_health_gpu_utilization_ratio"][GPU] >= 0.95)
    finally:
        runtime.stop()


def test_slow_queries_run_on_their_own_interval(capture: Capture, clock: FakeClock) -> None:
    fake = FakeNvml(capture)
    sampler, registry = manual(fake, clock, interval=1, slow=5)
    energies = []
    for _ in range(11):
        fake.advance(4)  # one second of trace per sample
        sampler.sample_once()
        energies.append(scrape(registry)["model_health_gpu_energy_joules_total"][GPU])
        clock.advance(1)
    # Taken at t = 0, 5 and 10 s only; carried (not dropped) in between.
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 3
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 6
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 11
    assert len(set(energies)) == 3 and energies[:5] == [energies[0]] * 5


def test_slow_queries_off_leaves_their_series_out(capture: Capture, clock: FakeClock) -> None:
    fake = FakeNvml(capture)
    sampler, registry = manual(fake, clock, slow_queries=False)
    sampler.sample_once()
    samples = scrape(registry)
    assert "model_health_gpu_energy_joules_total" not in samples
    assert "model_health_gpu_pcie_transmit_bytes_per_second" not in samples
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == fake.calls["nvmlDeviceGetPcieThroughput"] == 0
    assert only(samples, "model_health_gpu_collector_up") == 1


def test_nvml_failure_is_collector_down_logged_once(
    capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    sampler, registry = manual(fake, clock)
    sampler.sample_once()
    fake.fail(N.ERROR_GPU_IS_LOST)
    for _ in range(5):
        clock.advance(1)
        sampler.sample_once()
        samples = scrape(registry)
        assert only(samples, "model_health_gpu_collector_up") == 0
        assert "model_health_gpu_utilization_ratio" not in samples
    [warning] = messages(caplog, logging.WARNING)
    assert "GPU is lost" in warning
    fake.heal()
    for _ in range(3):
        clock.advance(1)
        sampler.sample_once()
    assert only(scrape(registry), "model_health_gpu_collector_up") == 1
    assert len(messages(caplog, logging.WARNING)) == 1
    infos = messages(caplog, logging.INFO)
    assert [m for m in infos if m.startswith("NVML up")] and len(
        [m for m in infos if m.startswith("NVML recovered")]
    ) == 1
    # The failed NVML was shut down and initialised afresh, not left half open.
    assert fake.calls["nvmlShutdown"] >= 1 and fake.calls["nvmlInit"] >= 2


def test_missing_library_keeps_serving(capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    fake.fail(N.ERROR_LIBRARY_NOT_FOUND, ["nvmlInit"])
    sampler, registry = manual(fake, clock)
    for _ in range(4):
        sampler.sample_once()
        clock.advance(1)
    assert scrape(registry) == {"model_health_gpu_collector_up": {(): 0.0}}
    [warning] = messages(caplog, logging.WARNING)
    assert "NVML Shared Library Not Found" in warning
    fake.heal()  # the driver got installed: picked up without a restart
    sampler.sample_once()
    assert only(scrape(registry), "model_health_gpu_collector_up") == 1


def test_real_pynvml_without_a_driver(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    real = N.real_nvml()
    try:
        real.nvmlInit()
    except N.NVMLError:
        pass
    else:
        real.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    registry = CollectorRegistry()
    runtime = start_gpu_collector(GpuConfig(mode="sidecar", interval_seconds=0.05, slow_interval_seconds=1), registry)
    try:
        assert runtime.wait_for_sample(10)
        assert scrape(registry) == {"model_health_gpu_collector_up": {(): 0.0}}
        ready, why = runtime.ready()
        assert ready and "NVML unavailable" in why
    finally:
        runtime.stop()
    assert len(messages(caplog, logging.WARNING)) == 1


def test_memory_v1_fallback_on_old_drivers(
    capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    fake.fail(N.ERROR_FUNCTION_NOT_FOUND, ["nvmlDeviceGetMemoryInfo_v2"])
    sampler, registry = manual(fake, clock)
    for _ in range(3):
        sampler.sample_once()
    samples = scrape(registry)
    assert samples["model_health_gpu_memory_used_bytes"][GPU] == fake.current_row().mem_used  # v1: incl. reserved
    assert "model_health_gpu_memory_reserved_bytes" not in samples
    assert only(samples, "model_health_gpu_collector_up") == 1
    assert fake.calls["nvmlDeviceGetMemoryInfo_v2"] == 1  # not retried every interval
    assert len([m for m in messages(caplog, logging.INFO) if "MemoryInfo(v2)" in m]) == 1


def test_per_process_not_found_is_no_data(capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    sampler, registry = manual(fake, clock)
    sampler.sample_once()
    assert scrape(registry)["model_health_gpu_process_utilization_ratio"]
    # Same row again: no sample newer than the last one, so NVML answers Not Found.
    sampler.sample_once()
    samples = scrape(registry)
    assert "model_health_gpu_process_utilization_ratio" not in samples
    assert samples["model_health_gpu_process_memory_used_bytes"]
    assert only(samples, "model_health_gpu_collector_up") == 1
    assert not [m for m in messages(caplog, logging.INFO) if "Not Found" in m]
    assert not messages(caplog, logging.WARNING)


def test_unsupported_reading_is_left_out_and_noted_once(
    capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    fake.fail(N.ERROR_NOT_SUPPORTED, ["nvmlDeviceGetPowerUsage"])
    sampler, registry = manual(fake, clock)
    for _ in range(3):
        sampler.sample_once()
    samples = scrape(registry)
    assert "model_health_gpu_power_watts" not in samples
    assert only(samples, "model_health_gpu_collector_up") == 1
    assert len([m for m in messages(caplog, logging.INFO) if "nvmlDeviceGetPowerUsage" in m]) == 1


def test_unexpected_exception_does_not_kill_the_sampler(capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLER_LOG)
    fake = FakeNvml(capture)
    registry = CollectorRegistry()
    runtime = start_gpu_collector(GpuConfig(interval_seconds=0.01, slow_interval_seconds=1), registry, nvml=fake)
    try:
        assert runtime.wait_for_sample(10)

        def broken(name: str) -> None:
            if name == "nvmlDeviceGetTemperature":
                raise RuntimeError("boom")

        fake.before_call = broken
        wait_until(lambda: only(scrape(registry), "model_health_gpu_collector_up") == 0)
        fake.before_call = None
        wait_until(lambda: only(scrape(registry), "model_health_gpu_collector_up") == 1)
    finally:
        runtime.stop()
    [warning] = messages(caplog, logging.WARNING)
    assert "boom" in warning


def test_stale_sample_is_collector_down(capture: Capture, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="exporter.gpu.collector")
    fake = FakeNvml(capture)
    sampler = GpuSampler(NvmlReader(fake), interval_seconds=1, slow_interval_seconds=15, clock=clock)
    sampler.sample_once()
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, stale_after_seconds=30, clock=clock))
    assert only(scrape(registry), "model_health_gpu_collector_up") == 1
    clock.advance(31)  # the sampler is stuck inside NVML: no new sample for 31 s
    for _ in range(3):
        assert scrape(registry) == {"model_health_gpu_collector_up": {(): 0.0}}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "hanging" in warnings[0].getMessage()
    sampler.sample_once()
    assert only(scrape(registry), "model_health_gpu_collector_up") == 1


def test_several_gpus(capture: Capture, clock: FakeClock) -> None:
    fake = FakeNvml(capture, devices=2)
    sampler, registry = manual(fake, clock)
    sampler.sample_once()
    series = scrape(registry)["model_health_gpu_memory_total_bytes"]
    assert {dict(labels)["gpu"] for labels in series} == {"0", "1"}
    assert len({dict(labels)["gpu_uuid"] for labels in series}) == 2


def test_mode_off_registers_nothing(capture: Capture) -> None:
    fake = FakeNvml(capture)
    registry = CollectorRegistry()
    runtime = start_gpu_collector(GpuConfig(mode="off"), registry, nvml=fake)
    assert runtime.collector is None and runtime.snapshot() is None
    assert generate_latest(registry) == b""
    assert runtime.ready() == (True, "gpu: off")
    runtime.stop()
    assert sum(fake.calls.values()) == 0


def test_stop_shuts_nvml_down_and_unregisters(capture: Capture) -> None:
    fake = FakeNvml(capture)
    registry = CollectorRegistry()
    # Any object with GpuConfig's fields will do (the benchmark passes a namespace).
    config = SimpleNamespace(mode="sidecar", interval_seconds=0.01, slow_interval_seconds=0.05)
    runtime = start_gpu_collector(config, registry, nvml=fake)  # type: ignore[arg-type]
    assert runtime.wait_for_sample(10)
    runtime.stop()
    runtime.stop()  # idempotent
    assert generate_latest(registry) == b""
    with pytest.raises(N.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
