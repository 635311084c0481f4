"""Background NVML sampling: one thread reads every GPU each interval into an immutable snapshot.

A scrape never calls NVML; it renders the last :class:`~exporter.gpu.sample.GpuSnapshot`.
:class:`NvmlReader` does one sample (no threads, no sleeping, usable from tests);
:class:`GpuSampler` runs it on a thread at ``interval_seconds``, decides when the slow
queries are due, and logs each change of health once.

Cheap calls, every interval (1–10 µs each on the captured H200): utilization, v2 memory
info (v1 where the driver lacks v2), power, temperature, SM clock, compute processes, and
per-process utilization (a sample-buffer read, ~2.7 ms). Besides each process's newest sample,
the reader keeps the mean of the samples it received over the last ``PROCESS_WINDOW_SECONDS``
(or since the previous read, when that is longer): NVML adds a sample every 200–400 ms on the
captured H200, so a faster read often gets none while the process is busy, and a mean over one
read alone would call it idle. Costly calls, every
``slow_interval_seconds`` and only when ``slow_queries`` is on: the total-energy counter
(~3 ms) and PCIe throughput (~21 ms each direction, it samples for 20 ms). Their last values
are carried between slow samples, with the time the counter was read. The MIG layout (mode,
MIG devices and their slice counts, ~160 µs) is read at start and again every slow interval,
whether or not the slow queries are on.

After each read, an optional ledger (``exporter.gpu.energy.EnergyLedger``) splits the GPUs'
energy and time among models and the snapshot carries its running totals; the ledger runs in
this thread, so a scrape still only renders.

Errors: NVML answers that mean "no such reading here" (Not Supported, Not Found, No
Permission, …; see ``nvml.ABSENT_CODES``) leave that series out and are logged once per GPU
and call at INFO (Not Found, which per-process utilization answers whenever no process ran,
is not logged). Any other NVML error, and NVML not loading at all (no driver, no GPU),
makes the sample ``up=False`` with the reason; NVML is shut down and initialised again on
the next interval, so a driver that comes back is picked up.

MIG: on a MIG-enabled GPU NVML reports no device or per-process utilization (those series
are absent, not 0); memory, power, temperature and clocks are the whole board's. For each
MIG device NVML gives its UUID, GPU/compute instance IDs and its GPU instance's memory,
which is what ``model_health_gpu_mig_memory_*`` carries. Processes come from the parent
GPU (with their instance IDs), or from each MIG device where the parent refuses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from exporter.gpu import nvml as N
from exporter.gpu.attribution import UNKNOWN, PodRef
from exporter.gpu.sample import GpuReading, GpuSnapshot, MigReading, ModelGpuUsage, ProcessReading

log = logging.getLogger(__name__)

Attribute = Callable[[int], PodRef]


class Ledger(Protocol):
    """Splits each snapshot's GPU energy and time among models; returns the running totals."""

    def observe(self, snapshot: GpuSnapshot) -> tuple[ModelGpuUsage, ...]: ...


# NVML reports PCIe throughput in KB/s; NVML's KB is 1024 bytes.
KIB = 1024
# Per-process samples averaged for energy attribution: those received this long ago at most
# (longer when reads are further apart). Several NVML samples, whatever the read interval.
PROCESS_WINDOW_SECONDS = 1.0


@dataclass
class _MigDevice:
    handle: Any
    uuid: str
    gpu_instance_id: int
    compute_instance_id: int
    gpu_instance_slices: int | None = None
    compute_instance_slices: int | None = None


@dataclass
class _Device:
    """What the reader keeps per GPU between samples (sampler thread only)."""

    index: int
    handle: Any
    uuid: str
    name: str
    memory_v2: bool = True
    mig_enabled: bool | None = None
    mig_slices: int | None = None
    mig: list[_MigDevice] = field(default_factory=list)
    # Newest per-process utilization sample seen (µs): NVML returns only newer ones.
    process_samples_since: int = 0
    # (received at, pid, SM share) of the samples within the averaging window; when read last.
    recent_samples: deque[tuple[float, int, float]] = field(default_factory=deque)
    last_read_at: float | None = None
    energy_joules: float | None = None
    energy_at: float | None = None
    pcie_transmit: float | None = None
    pcie_receive: float | None = None


class _Failed(Exception):
    """An NVML call failed outright (not an absent reading)."""

    def __init__(self, where: str, cause: BaseException) -> None:
        super().__init__(f"{where}: {N.describe(cause)}")
        self.cause = cause


class NvmlReader:
    """Reads every GPU once per :meth:`read`; keeps NVML initialised between reads."""

    def __init__(self, nvml: Any, *, attribute: Attribute | None = None, slow_queries: bool = True) -> None:
        self._nvml = nvml
        self._attribute = attribute
        self._slow_queries = slow_queries
        self._devices: list[_Device] | None = None
        self._open = False  # nvmlInit succeeded and no nvmlShutdown since
        self._driver = ""
        self._noted: set[tuple[str, str]] = set()

    @property
    def initialised(self) -> bool:
        return self._devices is not None

    def read(self, now: float, slow_due: bool) -> GpuSnapshot:
        """One sample at time ``now``; ``slow_due`` adds the costly queries and MIG layout."""
        if self._devices is None:
            try:
                self._start()
            except _Failed as failed:
                self.close()
                return GpuSnapshot(taken_at=now, up=False, reason=str(failed))
            slow_due = True
        assert self._devices is not None
        gpus: list[GpuReading] = []
        failures: list[str] = []
        for device in self._devices:
            try:
                if slow_due:
                    self._read_layout(device)
                gpus.append(self._read_device(device, slow_due, now))
            except _Failed as failed:
                failures.append(f"GPU {device.index} ({device.uuid}): {failed}")
        if failures:
            # Start over next interval: a lost GPU or a reloaded driver needs fresh handles.
            self.close()
        return GpuSnapshot(
            taken_at=now, up=not failures, reason="; ".join(failures), driver_version=self._driver, gpus=tuple(gpus)
        )

    def close(self) -> None:
        """Shut NVML down (errors ignored: it may be the very thing that failed)."""
        if self._open:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down a broken library is best effort
                pass
        self._open = False
        self._devices = None
        self._driver = ""

    # ---------------------------------------------------------------------------------
    # Start-up.

    def _start(self) -> None:
        nvml = self._nvml
        self._call("nvmlInit", nvml.nvmlInit)
        self._open = True
        self._driver = N.text(self._call("nvmlSystemGetDriverVersion", nvml.nvmlSystemGetDriverVersion))
        count = int(self._call("nvmlDeviceGetCount", nvml.nvmlDeviceGetCount))
        devices = []
        for index in range(count):
            handle = self._call(f"nvmlDeviceGetHandleByIndex({index})", nvml.nvmlDeviceGetHandleByIndex, index)
            uuid = N.text(self._call("nvmlDeviceGetUUID", nvml.nvmlDeviceGetUUID, handle))
            name = N.text(self._call("nvmlDeviceGetName", nvml.nvmlDeviceGetName, handle))
            devices.append(_Device(index=index, handle=handle, uuid=uuid, name=name))
        self._devices = devices

    def _read_layout(self, device: _Device) -> None:
        nvml = self._nvml
        mode = self._optional(device, "nvmlDeviceGetMigMode", nvml.nvmlDeviceGetMigMode, device.handle)
        device.mig_enabled = None if mode is None else int(mode[0]) == N.MIG_ENABLE
        device.mig = []
        device.mig_slices = None
        if not device.mig_enabled:
            return
        slots = self._optional(
            device, "nvmlDeviceGetMaxMigDeviceCount", nvml.nvmlDeviceGetMaxMigDeviceCount, device.handle
        )
        # As many MIG devices as the GPU has compute slices (seven 1-slice instances at most).
        device.mig_slices = int(slots) if slots else None
        for slot in range(int(slots or 0)):
            try:
                handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(device.handle, slot)
            except Exception as exc:  # noqa: BLE001 - classified just below
                if N.is_absent(exc) or (N.is_nvml_error(exc) and exc.value == N.ERROR_INVALID_ARGUMENT):  # type: ignore[attr-defined]
                    continue  # an empty slot
                raise _Failed("nvmlDeviceGetMigDeviceHandleByIndex", exc) from exc
            attributes = self._optional(device, "nvmlDeviceGetAttributes", nvml.nvmlDeviceGetAttributes, handle)
            device.mig.append(
                _MigDevice(
                    handle=handle,
                    gpu_instance_slices=_slices(attributes, "gpuInstanceSliceCount"),
                    compute_instance_slices=_slices(attributes, "computeInstanceSliceCount"),
                    uuid=N.text(self._call("nvmlDeviceGetUUID", nvml.nvmlDeviceGetUUID, handle)),
                    gpu_instance_id=int(
                        self._call("nvmlDeviceGetGpuInstanceId", nvml.nvmlDeviceGetGpuInstanceId, handle)
                    ),
                    compute_instance_id=int(
                        self._call("nvmlDeviceGetComputeInstanceId", nvml.nvmlDeviceGetComputeInstanceId, handle)
                    ),
                )
            )

    # ---------------------------------------------------------------------------------
    # One GPU.

    def _read_device(self, device: _Device, slow_due: bool, now: float) -> GpuReading:
        nvml, h = self._nvml, device.handle
        reading = GpuReading(
            index=device.index,
            uuid=device.uuid,
            name=device.name,
            mig_enabled=device.mig_enabled,
            mig_slices=device.mig_slices,
        )
        utilization = self._optional(device, "nvmlDeviceGetUtilizationRates", nvml.nvmlDeviceGetUtilizationRates, h)
        if utilization is not None:
            reading = replace(
                reading, utilization=utilization.gpu / 100.0, memory_utilization=utilization.memory / 100.0
            )
        used, reserved, total = self._memory(device, h)
        power_mw = self._optional(device, "nvmlDeviceGetPowerUsage", nvml.nvmlDeviceGetPowerUsage, h)
        temperature = self._optional(
            device, "nvmlDeviceGetTemperature", nvml.nvmlDeviceGetTemperature, h, N.TEMPERATURE_GPU
        )
        sm_mhz = self._optional(device, "nvmlDeviceGetClockInfo", nvml.nvmlDeviceGetClockInfo, h, N.CLOCK_SM)
        if slow_due and self._slow_queries:
            energy_mj = self._optional(
                device, "nvmlDeviceGetTotalEnergyConsumption", nvml.nvmlDeviceGetTotalEnergyConsumption, h
            )
            tx = self._optional(
                device, "nvmlDeviceGetPcieThroughput", nvml.nvmlDeviceGetPcieThroughput, h, N.PCIE_TX_BYTES
            )
            rx = self._optional(
                device, "nvmlDeviceGetPcieThroughput", nvml.nvmlDeviceGetPcieThroughput, h, N.PCIE_RX_BYTES
            )
            device.energy_joules = None if energy_mj is None else energy_mj / 1000.0
            device.energy_at = None if energy_mj is None else now
            device.pcie_transmit = None if tx is None else float(tx * KIB)
            device.pcie_receive = None if rx is None else float(rx * KIB)
        return replace(
            reading,
            memory_used_bytes=used,
            memory_reserved_bytes=reserved,
            memory_total_bytes=total,
            power_watts=None if power_mw is None else power_mw / 1000.0,
            temperature_celsius=None if temperature is None else float(temperature),
            sm_clock_hertz=None if sm_mhz is None else sm_mhz * 1e6,
            energy_joules=device.energy_joules,
            energy_sampled_at=device.energy_at,
            pcie_transmit_bytes_per_second=device.pcie_transmit,
            pcie_receive_bytes_per_second=device.pcie_receive,
            mig=tuple(self._read_mig(device)),
            processes=self._processes(device, now),
        )

    def _memory(self, device: _Device, handle: Any) -> tuple[int | None, int | None, int | None]:
        """(used, reserved, total) bytes: v2 reports the driver's reservation apart from use."""
        nvml = self._nvml
        if device.memory_v2:
            try:
                info = nvml.nvmlDeviceGetMemoryInfo(handle, version=N.MEMORY_V2)
                return int(info.used), int(info.reserved), int(info.total)
            except Exception as exc:  # noqa: BLE001 - classified just below
                if not N.is_absent(exc):
                    raise _Failed("nvmlDeviceGetMemoryInfo(v2)", exc) from exc
                # An older driver: v1 from now on, whose "used" includes the reservation.
                device.memory_v2 = False
                self._note(device, "nvmlDeviceGetMemoryInfo(v2)", exc)
        info = self._optional(device, "nvmlDeviceGetMemoryInfo", nvml.nvmlDeviceGetMemoryInfo, handle)
        if info is None:
            return None, None, None
        return int(info.used), None, int(info.total)

    def _read_mig(self, device: _Device) -> list[MigReading]:
        readings = []
        for mig in device.mig:
            info = self._optional(
                device, "nvmlDeviceGetMemoryInfo(MIG)", self._nvml.nvmlDeviceGetMemoryInfo, mig.handle
            )
            readings.append(
                MigReading(
                    uuid=mig.uuid,
                    gpu_instance_id=mig.gpu_instance_id,
                    compute_instance_id=mig.compute_instance_id,
                    memory_used_bytes=None if info is None else int(info.used),
                    memory_total_bytes=None if info is None else int(info.total),
                    gpu_instance_slices=mig.gpu_instance_slices,
                    compute_instance_slices=mig.compute_instance_slices,
                )
            )
        return readings

    def _processes(self, device: _Device, now: float) -> tuple[ProcessReading, ...]:
        nvml = self._nvml
        listed = self._optional(
            device, "nvmlDeviceGetComputeRunningProcesses", nvml.nvmlDeviceGetComputeRunningProcesses, device.handle
        )
        if listed is None and device.mig:
            # Without privileges a MIG-enabled parent refuses the aggregate list; each MIG
            # device still lists its own processes.
            listed = []
            for mig in device.mig:
                listed += (
                    self._optional(
                        device,
                        "nvmlDeviceGetComputeRunningProcesses(MIG)",
                        nvml.nvmlDeviceGetComputeRunningProcesses,
                        mig.handle,
                    )
                    or []
                )
        if not listed:
            return ()
        newest, mean = self._process_utilization(device, now)
        by_pid: dict[int, ProcessReading] = {}
        for process in listed:
            pid = int(process.pid)
            used = process.usedGpuMemory
            ref = self._attribute(pid) if self._attribute is not None else UNKNOWN
            by_pid[pid] = ProcessReading(
                pid=pid,
                used_memory_bytes=None if used is None else int(used),
                sm_utilization=newest.get(pid),
                sm_utilization_mean=mean.get(pid),
                pod_uid=ref.pod_uid,
                container_id=ref.container_id,
                gpu_instance_id=_instance_id(getattr(process, "gpuInstanceId", None)),
                compute_instance_id=_instance_id(getattr(process, "computeInstanceId", None)),
            )
        return tuple(by_pid[pid] for pid in sorted(by_pid))

    def _process_utilization(self, device: _Device, now: float) -> tuple[dict[int, float], dict[int, float]]:
        """(pid → SM busy share of this read's newest sample, pid → mean of the samples received
        within the averaging window); {} where NVML gave none."""
        samples = self._optional(
            device,
            "nvmlDeviceGetProcessUtilization",
            self._nvml.nvmlDeviceGetProcessUtilization,
            device.handle,
            device.process_samples_since,
        )
        newest: dict[int, tuple[int, float]] = {}
        recent = device.recent_samples
        for sample in samples or ():
            stamp, pid, share = int(sample.timeStamp), int(sample.pid), sample.smUtil / 100.0
            device.process_samples_since = max(device.process_samples_since, stamp)
            if stamp >= newest.get(pid, (-1, 0.0))[0]:
                newest[pid] = (stamp, share)
            recent.append((now, pid, share))
        since_last = 0.0 if device.last_read_at is None else now - device.last_read_at
        device.last_read_at = now
        oldest = now - max(PROCESS_WINDOW_SECONDS, since_last)
        while recent and recent[0][0] <= oldest:
            recent.popleft()
        sums: dict[int, tuple[float, int]] = {}
        for _, pid, share in recent:
            total, count = sums.get(pid, (0.0, 0))
            sums[pid] = (total + share, count + 1)
        return (
            {pid: share for pid, (_, share) in newest.items()},
            {pid: total / count for pid, (total, count) in sums.items()},
        )

    # ---------------------------------------------------------------------------------
    # Calling NVML.

    def _call(self, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A call that must work: any NVML error fails the sample."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one reason line
            raise _Failed(where, exc) from exc

    def _optional(self, device: _Device, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A reading that may not exist here: None when NVML says so, a failure otherwise."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - classified just below
            if not N.is_absent(exc):
                raise _Failed(where, exc) from exc
            self._note(device, where, exc)
            return None

    def _note(self, device: _Device, where: str, exc: BaseException) -> None:
        if getattr(exc, "value", None) == N.ERROR_NOT_FOUND:
            return  # "no data right now" (idle per-process utilization, empty MIG slot)
        key = (device.uuid, where)
        if key not in self._noted:
            self._noted.add(key)
            log.info(
                "GPU %d (%s): %s answers %s; its series is left out", device.index, device.uuid, where, N.describe(exc)
            )


def _slices(attributes: Any, name: str) -> int | None:
    value = None if attributes is None else getattr(attributes, name, None)
    return int(value) if value else None


def _instance_id(value: object) -> int | None:
    if value is None:
        return None
    number = int(value)  # type: ignore[call-overload]
    return None if number == N.VALUE_NOT_AVAILABLE_UINT else number


class GpuSampler:
    """Runs an :class:`NvmlReader` on a daemon thread; ``latest`` is the newest snapshot."""

    def __init__(
        self,
        reader: NvmlReader,
        *,
        interval_seconds: float,
        slow_interval_seconds: float,
        clock: Callable[[], float] = time.time,
        ledger: Ledger | None = None,
    ) -> None:
        self._reader = reader
        self._ledger = ledger
        self._interval = interval_seconds
        self._slow_interval = slow_interval_seconds
        self._clock = clock
        self._latest: GpuSnapshot | None = None
        self._last_slow: float | None = None
        self._health: str | None = None  # None (no sample yet), "up" or "down"
        self._stop = threading.Event()
        self._sampled = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def latest(self) -> GpuSnapshot | None:
        return self._latest

    @property
    def interval_seconds(self) -> float:
        return self._interval

    def sample_once(self) -> GpuSnapshot:
        """Take one sample now, publish it and log a change of health; never raises."""
        now = self._clock()
        slow_due = self._last_slow is None or now - self._last_slow >= self._slow_interval
        was_initialised = self._reader.initialised
        try:
            snapshot = self._reader.read(now, slow_due)
        except Exception as exc:  # noqa: BLE001 - the sampler thread must outlive any bug in a reading
            self._reader.close()
            snapshot = GpuSnapshot(taken_at=now, up=False, reason=f"unexpected {type(exc).__name__}: {exc}")
            if self._health != "down":
                log.warning("GPU sampling failed unexpectedly", exc_info=True)
        if slow_due or not was_initialised:
            self._last_slow = now
        if self._ledger is not None:
            try:
                snapshot = replace(snapshot, models=self._ledger.observe(snapshot))
            except Exception:  # noqa: BLE001 - attribution must not stop the readings
                log.warning("GPU energy attribution failed; its totals are left as they were", exc_info=True)
                if self._latest is not None:
                    snapshot = replace(snapshot, models=self._latest.models)
        self._latest = snapshot
        self._report(snapshot)
        self._sampled.set()
        return snapshot

    def _report(self, snapshot: GpuSnapshot) -> None:
        if snapshot.up:
            if self._health != "up":
                names = ", ".join(sorted({gpu.name for gpu in snapshot.gpus})) or "none"
                verb = "recovered" if self._health == "down" else "up"
                log.info("NVML %s: %d GPU(s) (%s), driver %s", verb, len(snapshot.gpus), names, snapshot.driver_version)
            self._health = "up"
        else:
            if self._health != "down":
                log.warning(
                    "GPU metrics unavailable: %s; model_health_gpu_collector_up is 0 until NVML answers",
                    snapshot.reason,
                )
            self._health = "down"

    def wait_for_sample(self, timeout: float | None = None) -> bool:
        """Block until the first sample is published; False on timeout."""
        return self._sampled.wait(timeout)

    def start(self) -> GpuSampler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                # A hung NVML call cannot be interrupted; the daemon thread dies with the process.
                log.warning("GPU sampler still inside an NVML call after %.0fs; leaving it behind", timeout)

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                self.sample_once()
                next_at += self._interval
                delay = next_at - time.monotonic()
                if delay < 0:  # fell behind (a slow sample): carry on from now, no burst
                    next_at, delay = time.monotonic(), 0.0
                self._stop.wait(delay)
        finally:
            self._reader.close()
