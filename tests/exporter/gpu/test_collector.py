"""The collector driven by the fake NVML through every row and phase of the recorded trace."""

from __future__ import annotations

import statistics

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.catalogue import all_series_names, by_name
from exporter.gpu import GpuCollector, GpuSampler, NvmlReader
from exporter.gpu.collector import GPU_METRICS
from exporter.gpu.fake import Capture, FakeNvml
from tests.support.gpu import FakeClock, Samples, only, scrape

RESERVED = 644_939_776
UUID = "GPU-c138a879-eaeb-8fbf-35b2-5b26e2820ef1"
GPU = (("gpu", "0"), ("gpu_uuid", UUID))


def gpu_value(samples: Samples, name: str) -> float:
    return samples[name][GPU]


def process_series(samples: Samples, name: str) -> dict[int, float]:
    return {int(dict(labels)["pid"]): value for labels, value in samples.get(name, {}).items()}


def replay(capture: Capture, clock: FakeClock) -> list[tuple[int, Samples]]:
    """Sample and scrape once per trace row, in order, as a 0.25 s sampler would."""
    fake = FakeNvml(capture)
    reader = NvmlReader(fake)
    # Slow interval = interval, so every row's energy reading is taken and comparable.
    sampler = GpuSampler(reader, interval_seconds=capture.period, slow_interval_seconds=capture.period, clock=clock)
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, clock=clock))
    scrapes = []
    for index in range(len(capture.rows)):
        fake.seek(index)
        sampler.sample_once()
        scrapes.append((index, scrape(registry)))
        clock.advance(capture.period)
    reader.close()
    return scrapes


@pytest.fixture(scope="module")
def replayed(capture: Capture) -> list[tuple[int, Samples]]:
    return replay(capture, FakeClock())


def test_every_row_is_exported_as_recorded(capture: Capture, replayed: list[tuple[int, Samples]]) -> None:
    newest_sample = 0
    for index, samples in replayed:
        row = capture.rows[index]
        assert only(samples, "model_health_gpu_collector_up") == 1
        assert gpu_value(samples, "model_health_gpu_utilization_ratio") == pytest.approx(row.util_gpu / 100)
        assert gpu_value(samples, "model_health_gpu_memory_utilization_ratio") == pytest.approx(row.util_memory / 100)
        # v2 memory: the driver's 615 MiB reservation apart from what processes use.
        assert gpu_value(samples, "model_health_gpu_memory_used_bytes") == row.mem_used - RESERVED
        assert gpu_value(samples, "model_health_gpu_memory_reserved_bytes") == RESERVED
        assert gpu_value(samples, "model_health_gpu_memory_total_bytes") == row.mem_total
        assert gpu_value(samples, "model_health_gpu_power_watts") == pytest.approx(row.power_mw / 1000)
        assert gpu_value(samples, "model_health_gpu_temperature_celsius") == row.temp_c
        assert gpu_value(samples, "model_health_gpu_sm_clock_hertz") == pytest.approx(row.sm_mhz * 1e6)
        assert gpu_value(samples, "model_health_gpu_energy_joules_total") == pytest.approx(row.energy_mj / 1000)
        assert gpu_value(samples, "model_health_gpu_pcie_transmit_bytes_per_second") == 837 * 1024
        assert gpu_value(samples, "model_health_gpu_pcie_receive_bytes_per_second") == 553 * 1024
        assert gpu_value(samples, "model_health_gpu_mig_enabled") == 0
        memory = process_series(samples, "model_health_gpu_process_memory_used_bytes")
        assert memory == {p["pid"]: p["usedGpuMemory"] for p in row.procs}
        utilization = process_series(samples, "model_health_gpu_process_utilization_ratio")
        fresh = [s for s in row.proc_util or () if s["timeStamp"] > newest_sample]
        if row.procs and fresh:
            assert utilization == {s["pid"]: pytest.approx(s["smUtil"] / 100) for s in fresh}
        else:
            # "Not Found" (nothing ran, or no sample newer than the last one): no data, no error.
            assert utilization == {}
        newest_sample = max([newest_sample, *(s["timeStamp"] for s in row.proc_util or ())])


def test_phases_show_the_load(capture: Capture, replayed: list[tuple[int, Samples]]) -> None:
    def series(phase: str, name: str) -> list[float]:
        indices = set(capture.rows_in(phase))
        return [gpu_value(samples, name) for index, samples in replayed if index in indices]

    utilization = "model_health_gpu_utilization_ratio"
    assert max(series("idle", utilization)) == 0
    assert statistics.median(series("heavy", utilization)) >= 0.95
    assert 0.4 <= statistics.median(series("half", utilization)) <= 0.6
    power = "model_health_gpu_power_watts"
    assert statistics.median(series("heavy", power)) > 3 * statistics.median(series("idle", power))
    used = series("mem_ramp", "model_health_gpu_memory_used_bytes")
    assert used == sorted(used) and used[-1] - used[0] > 40e9
    released = series("release", "model_health_gpu_memory_used_bytes")
    assert released[-1] < 2e9
    energy = [gpu_value(samples, "model_health_gpu_energy_joules_total") for _, samples in replayed]
    assert energy == sorted(energy)


def test_info_labels(replayed: list[tuple[int, Samples]]) -> None:
    _, samples = replayed[-1]
    assert samples["model_health_gpu_info"] == {
        (("driver_version", "580.159.04"), ("gpu", "0"), ("gpu_model", "NVIDIA H200"), ("gpu_uuid", UUID)): 1.0
    }


def test_families_come_from_the_catalogue(capture: Capture) -> None:
    fake = FakeNvml(capture)
    fake.seek_phase("heavy")
    clock = FakeClock()
    sampler = GpuSampler(NvmlReader(fake), interval_seconds=1, slow_interval_seconds=15, clock=clock)
    sampler.sample_once()
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, clock=clock))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    exposed = {sample.name for family in families for sample in family.samples}
    assert exposed <= all_series_names()
    for family in families:
        metric = by_name(family.name if family.type != "counter" else family.name + "_total")
        assert family.documentation == metric.help
        assert family.type == metric.prometheus_type
        for sample in family.samples:
            assert tuple(sorted(sample.labels)) == tuple(sorted(metric.labels))
    # Everything the collector can render is a GPU metric of the catalogue (a device's, or a
    # model's share of one), owned by both.
    for name in GPU_METRICS:
        assert name.startswith(("model_health_gpu_", "model_health_model_gpu_")), name
        assert by_name(name).owner == {"sidecar", "node"}


def test_nothing_before_the_first_sample() -> None:
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: None))
    assert generate_latest(registry) == b""
