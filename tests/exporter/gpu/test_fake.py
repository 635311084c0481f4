"""The fake NVML against the recorded H200 capture: call names, return shapes, errors, costs."""

from __future__ import annotations

import hashlib

import pytest

from exporter.gpu import nvml as N
from exporter.gpu.fake import DEFAULT_FIXTURES, PHASES, Capture, FakeNvml
from tests.support.gpu import FakeClock

RESERVED = 644_939_776  # the capture's v2 "reserved" (615 MiB)


# SHA-256 of the capture as recorded on the H200 (its README says where and how); the vendored
# copy must stay that capture byte for byte, since the demo and every GPU test replay it.
CAPTURE_SHA256 = {
    "README.md": "65f3f35b599b12a6c6f1b76cc59e03cc3c9e2931cd386d57b438e59aef9c6a9e",
    "nvml_snapshot.json": "66b292f1d24bffc587fbe266b30a7e4845069400551f39417656918b3865f0a8",
    "nvml_trace.jsonl": "e15e7c66fb067a9c4b5a7615707bb1974c04ac44cd0fb5057391bb1373f175d8",
    "worker_phases.txt": "1d6ba09e25c4706ecf9f25400f1723e221b657e772aef8094195cea3124eb28e",
}


@pytest.mark.parametrize("name", sorted(CAPTURE_SHA256))
def test_packaged_copy_is_the_recorded_capture(name: str) -> None:
    assert hashlib.sha256((DEFAULT_FIXTURES / name).read_bytes()).hexdigest() == CAPTURE_SHA256[name]


def test_capture_has_every_phase(capture: Capture) -> None:
    assert len(capture.rows) == 141
    assert capture.period == pytest.approx(0.25, abs=0.05)
    assert tuple(capture.phases) == PHASES
    for phase in PHASES:
        assert len(capture.rows_in(phase)) >= 10, phase
    with pytest.raises(KeyError, match="unknown phase"):
        capture.rows_in("warp")


def test_calls_before_init_and_after_shutdown_are_uninitialized(fake: FakeNvml) -> None:
    with pytest.raises(N.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 1
    fake.nvmlShutdown()
    with pytest.raises(N.NVMLError_Uninitialized):
        fake.nvmlDeviceGetHandleByIndex(0)


def test_static_answers_are_the_captured_ones(fake: FakeNvml, capture: Capture) -> None:
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    assert fake.nvmlSystemGetDriverVersion() == "580.159.04"
    assert fake.nvmlDeviceGetName(handle) == "NVIDIA H200"
    assert fake.nvmlDeviceGetUUID(handle) == capture.value("uuid")
    assert fake.nvmlDeviceGetEnforcedPowerLimit(handle) == 700_000
    assert fake.nvmlDeviceGetPciInfo(handle).busId == "00000000:00:06.0"
    assert fake.nvmlDeviceGetMigMode(handle) == [0, 0]
    assert fake.nvmlDeviceGetPcieThroughput(handle, N.PCIE_TX_BYTES) == 837
    assert fake.nvmlDeviceGetPcieThroughput(handle, N.PCIE_RX_BYTES) == 553
    with pytest.raises(N.NVMLError_NotSupported) as raised:
        fake.nvmlDeviceGetFanSpeed(handle)
    assert raised.value.value == capture.device["fan"]["code"] == 3
    with pytest.raises(N.NVMLError):
        fake.nvmlDeviceGetHandleByIndex(1)


def test_return_shapes_are_pynvmls(fake: FakeNvml) -> None:
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    fake.seek_phase("heavy")
    row = fake.current_row()
    utilization = fake.nvmlDeviceGetUtilizationRates(handle)
    assert isinstance(utilization, N.Utilization)
    assert (utilization.gpu, utilization.memory) == (row.util_gpu, row.util_memory)
    v1 = fake.nvmlDeviceGetMemoryInfo(handle)
    v2 = fake.nvmlDeviceGetMemoryInfo(handle, version=N.MEMORY_V2)
    assert isinstance(v1, N.Memory) and isinstance(v2, N.MemoryV2)
    assert v2.version == N.MEMORY_V2
    # v1 counts the driver's reservation as used; v2 reports it apart (the capture shows both).
    assert (v1.total, v1.free, v1.used) == (row.mem_total, row.mem_free, row.mem_used)
    assert (v2.reserved, v2.used, v2.free) == (RESERVED, row.mem_used - RESERVED, row.mem_free)
    with pytest.raises(N.NVMLError):
        fake.nvmlDeviceGetMemoryInfo(handle, version=1)
    assert fake.nvmlDeviceGetPowerUsage(handle) == row.power_mw
    assert fake.nvmlDeviceGetTemperature(handle, N.TEMPERATURE_GPU) == row.temp_c
    assert fake.nvmlDeviceGetClockInfo(handle, N.CLOCK_SM) == row.sm_mhz
    assert fake.nvmlDeviceGetTotalEnergyConsumption(handle) == row.energy_mj
    [process] = fake.nvmlDeviceGetComputeRunningProcesses(handle)
    assert isinstance(process, N.FriendlyObject)
    assert vars(process) == row.procs[0]
    assert process.gpuInstanceId == N.VALUE_NOT_AVAILABLE_UINT  # not in MIG mode
    [sample] = fake.nvmlDeviceGetProcessUtilization(handle, 0)
    assert isinstance(sample, N.ProcessUtilizationSample)
    assert row.proc_util is not None
    assert (sample.pid, sample.timeStamp, sample.smUtil) == (
        row.proc_util[0]["pid"],
        row.proc_util[0]["timeStamp"],
        row.proc_util[0]["smUtil"],
    )


def test_process_utilization_not_found(fake: FakeNvml, capture: Capture) -> None:
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    idle = next(i for i, row in enumerate(capture.rows) if row.proc_util is None)
    fake.seek(idle)
    with pytest.raises(N.NVMLError_NotFound):
        fake.nvmlDeviceGetProcessUtilization(handle, 0)
    # NVML answers Not Found, too, when no sample is newer than the timestamp given.
    busy = fake.seek_phase("heavy")
    newest = max(s["timeStamp"] for s in capture.rows[busy].proc_util or ())
    with pytest.raises(N.NVMLError_NotFound):
        fake.nvmlDeviceGetProcessUtilization(handle, newest)


def test_fail_and_heal(fake: FakeNvml) -> None:
    fake.fail(N.ERROR_LIBRARY_NOT_FOUND, ["nvmlInit"])
    with pytest.raises(N.NVMLError_LibraryNotFound):
        fake.nvmlInit()
    fake.heal()
    fake.nvmlInit()
    fake.fail(N.ERROR_GPU_IS_LOST)
    with pytest.raises(N.NVMLError_GpuIsLost):
        fake.nvmlDeviceGetCount()
    assert fake.calls["nvmlInit"] == 2 and fake.calls["nvmlDeviceGetCount"] == 1


def test_realtime_replay_loops_with_rising_counters(capture: Capture) -> None:
    clock = FakeClock(0.0)
    fake = FakeNvml(capture, clock=clock)
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    energies, stamps = [], []
    for _ in range(int(2.5 * capture.duration / capture.period)):
        energies.append(fake.nvmlDeviceGetTotalEnergyConsumption(handle))
        try:
            stamps += [s.timeStamp for s in fake.nvmlDeviceGetProcessUtilization(handle, 0)]
        except N.NVMLError_NotFound:
            pass
        clock.advance(capture.period)
    assert fake.row_index < len(capture.rows)
    # Across loop boundaries the energy counter and sample timestamps keep increasing.
    assert energies == sorted(energies) and energies[-1] > 2 * (capture.rows[-1].energy_mj - capture.rows[0].energy_mj)
    # (Consecutive rows may repeat a sample: the probe asked for the last second each time.)
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0] + 2 * capture.duration * 1e6


def test_speed_scales_replay(capture: Capture) -> None:
    clock = FakeClock(0.0)
    fake = FakeNvml(capture, clock=clock, speed=4.0)
    clock.advance((capture.rows[10].t - capture.rows[0].t) / 4 + 1e-6)
    assert fake.row_index == 10


def test_call_costs_are_the_recorded_medians(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("exporter.gpu.fake.time.sleep", slept.append)
    fake = FakeNvml(capture, call_costs=1.0)
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    slept.clear()
    fake.nvmlDeviceGetUtilizationRates(handle)
    fake.nvmlDeviceGetTotalEnergyConsumption(handle)
    fake.nvmlDeviceGetPcieThroughput(handle, N.PCIE_TX_BYTES)
    utilization, energy, pcie = slept
    assert utilization == pytest.approx(capture.cost_us("utilization") / 1e6)
    assert energy == pytest.approx(capture.cost_us("energy_mj") / 1e6)
    assert pcie == pytest.approx(capture.cost_us("pcie_tx_kbs") / 1e6)
    # The capture's finding the sampler is built around: PCIe ≫ energy ≫ the cheap calls.
    assert pcie > 0.015 and energy > 0.002 and utilization < 1e-4


def test_extra_devices_have_their_own_uuids(capture: Capture) -> None:
    fake = FakeNvml(capture, devices=3)
    fake.nvmlInit()
    uuids = {fake.nvmlDeviceGetUUID(fake.nvmlDeviceGetHandleByIndex(i)) for i in range(3)}
    assert len(uuids) == 3 and capture.value("uuid") in uuids


def test_real_or_fake_falls_back_without_a_driver() -> None:
    from exporter.gpu.fake import real_or_fake

    nvml, description = real_or_fake()
    if description == "real NVML":
        pytest.skip("this machine has an NVIDIA driver")
    assert isinstance(nvml, FakeNvml) and "NVML Shared Library Not Found" in description
