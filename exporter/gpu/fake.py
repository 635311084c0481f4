"""A fake NVML that replays the recorded H200 capture, for tests and for demos without a GPU.

It answers to pynvml's call names with pynvml's return shapes and errors, driven by a real
capture (``fixtures/h200/``, a copy of ``shared/fixtures/nvml/h200``):

- ``nvml_snapshot.json`` gives the static answers (name, UUID, driver, memory total, the
  driver-reserved memory, PCIe throughput, which calls are "Not Supported" on this card) and
  each call's measured median cost in µs;
- ``nvml_trace.jsonl`` gives the moving values, one row per 0.25 s, through the phases in
  ``worker_phases.txt``: ``idle``, ``heavy`` (full bf16 matmul), ``half`` (50 % duty),
  ``mem_ramp`` (8 GB/s allocation), ``release``.

What is faithful, and where it comes from:

- return types are pynvml's own: ``c_nvmlUtilization_t``, ``c_nvmlMemory_t`` and
  ``c_nvmlMemory_v2_t`` (``version=`` as pynvml takes it), ``c_nvmlProcessUtilizationSample_t``,
  ``nvmlFriendlyObject`` for compute processes, plain ints for power (mW), energy (mJ),
  temperature (°C), clocks (MHz) and PCIe throughput (KB/s); (PCI info alone comes back as
  an ``nvmlFriendlyObject`` of the captured fields, not pynvml's ``c_nvmlPciInfo_t``);
- errors are pynvml's classes with the capture's codes: per-process utilization raises
  ``NVMLError_NotFound`` when the trace row recorded it, or when no sample is newer than the
  timestamp asked for; fan speed raises ``NVMLError_NotSupported``; every call before
  ``nvmlInit`` or after the last ``nvmlShutdown`` raises ``NVMLError_Uninitialized``;
- v2 memory info reports the capture's driver-reserved memory (615 MiB) as ``reserved`` and
  the rest of v1's ``used`` as ``used``, as the capture shows the real card doing;
- ``call_costs=1.0`` sleeps each call's recorded median (PCIe throughput ~21 ms, energy
  ~3 ms, the rest µs); other values scale it, 0 (the default) sleeps nothing.

What is *not* from the capture (the H200 ran with MIG disabled): MIG mode (``mig=``) follows
NVML's documentation — device utilization and per-process utilization are "Not Supported"
on a MIG-enabled GPU, MIG device handles come from ``nvmlDeviceGetMigDeviceHandleByIndex``
(``Not Found`` for empty slots) and report their GPU instance's memory, their own compute
processes, their GPU/compute instance IDs and (``nvmlDeviceGetAttributes``, MIG handles only)
their slice counts. Extra devices (``devices=2``…) are copies of the captured one with their
own UUIDs. PCIe throughput is the snapshot's constant.

Sharing (``tenants=``): the capture ran one worker. A :class:`Tenant` is a second process on
the GPU that replays the same recorded worker ``offset_rows`` rows later (wrapping around): its
memory and its per-process utilization samples are the recorded worker's at that other moment,
under its own pid, so two processes load the GPU differently at once. The device's own readings
(utilization, power, energy) stay the recorded ones — the one worker's — so a tenant is for
testing how the device is *shared*, not what two workers would draw together. Tenant samples
carry the current row's sample timestamp (200 ms before the row when the worker had none, which
keeps every timestamp rising as NVML's do).

Replay position: by default a cursor the caller moves (``seek``, ``seek_phase``,
``advance``); with ``clock=`` the trace plays in real time (times ``speed``) and loops,
shifting timestamps and the energy counter by one trace length per loop so both keep
increasing, as a real device's would.

Test hooks: ``before_call`` (called with each call's name before it runs; a test can block
it on an event), ``fail(code, calls)`` / ``heal()``, and ``calls`` (a count per call name).
"""

from __future__ import annotations

import bisect
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.gpu import nvml as N

DEFAULT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "h200"
# The phase names worker_phases.txt uses, in order; "end" only marks the last one's end.
PHASES = ("idle", "heavy", "half", "mem_ramp", "release")
# MIG slots an H200 offers (seven 1g instances at most).
H200_MAX_MIG_DEVICES = 7

# pynvml call → the snapshot entry whose measured cost it takes.
_COST_KEYS: dict[str, str] = {
    "nvmlDeviceGetCount": "system.count",
    "nvmlSystemGetDriverVersion": "system.driver",
    "nvmlSystemGetNVMLVersion": "system.nvml",
    "nvmlSystemGetCudaDriverVersion_v2": "system.cuda_driver",
    "nvmlSystemGetCudaDriverVersion": "system.cuda_driver",
    "nvmlDeviceGetHandleByIndex": "handle_by_index",
    "nvmlDeviceGetName": "name",
    "nvmlDeviceGetUUID": "uuid",
    "nvmlDeviceGetSerial": "serial",
    "nvmlDeviceGetPciInfo": "pci",
    "nvmlDeviceGetMinorNumber": "minor",
    "nvmlDeviceGetMemoryInfo": "memory",
    "nvmlDeviceGetMemoryInfo_v2": "memory_v2",
    "nvmlDeviceGetBAR1MemoryInfo": "bar1",
    "nvmlDeviceGetUtilizationRates": "utilization",
    "nvmlDeviceGetPowerUsage": "power_mw",
    "nvmlDeviceGetEnforcedPowerLimit": "power_limit_mw",
    "nvmlDeviceGetTotalEnergyConsumption": "energy_mj",
    "nvmlDeviceGetTemperature": "temp_gpu",
    "nvmlDeviceGetClockInfo": "clock_sm",
    "nvmlDeviceGetMaxClockInfo": "max_clock_sm",
    "nvmlDeviceGetPerformanceState": "pstate",
    "nvmlDeviceGetMigMode": "mig_mode",
    "nvmlDeviceGetComputeRunningProcesses": "compute_procs",
    "nvmlDeviceGetGraphicsRunningProcesses": "graphics_procs",
    # The capture has no timing for a successful per-process read (it answered Not Found);
    # nvmlDeviceGetSamples reads the same kind of sample buffer, so it stands in.
    "nvmlDeviceGetProcessUtilization": "samples_gpu_util",
    "nvmlDeviceGetPcieThroughput": "pcie_tx_kbs",
}


@dataclass(frozen=True)
class TraceRow:
    """One row of ``nvml_trace.jsonl`` (v1 memory, so ``mem_used`` includes reserved memory)."""

    t: float
    util_gpu: int
    util_memory: int
    mem_total: int
    mem_free: int
    mem_used: int
    power_mw: int
    temp_c: int
    sm_mhz: int
    energy_mj: int
    procs: tuple[dict[str, int], ...]
    # None where the capture recorded "Not Found".
    proc_util: tuple[dict[str, int], ...] | None

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> TraceRow:
        util, mem, proc_util = row["util"], row["mem"], row["proc_util"]
        return cls(
            t=float(row["t"]),
            util_gpu=int(util["gpu"]),
            util_memory=int(util["memory"]),
            mem_total=int(mem["total"]),
            mem_free=int(mem["free"]),
            mem_used=int(mem["used"]),
            power_mw=int(row["power_mw"]),
            temp_c=int(row["temp_c"]),
            sm_mhz=int(row["sm_mhz"]),
            energy_mj=int(row["energy_mj"]),
            procs=tuple(dict(p) for p in row["procs"]),
            proc_util=None if isinstance(proc_util, dict) else tuple(dict(s) for s in proc_util),
        )


@dataclass(frozen=True)
class Capture:
    """The recorded capture: static snapshot, trace rows and the worker's phase starts."""

    snapshot: dict[str, Any]
    rows: tuple[TraceRow, ...]
    phases: dict[str, tuple[float, float]]
    period: float

    @classmethod
    def load(cls, directory: Path | str = DEFAULT_FIXTURES) -> Capture:
        directory = Path(directory)
        snapshot = json.loads((directory / "nvml_snapshot.json").read_text(encoding="utf-8"))
        lines = (directory / "nvml_trace.jsonl").read_text(encoding="utf-8").splitlines()
        rows = tuple(TraceRow.from_json(json.loads(line)) for line in lines if line.strip())
        if len(rows) < 2:
            raise ValueError(f"{directory}/nvml_trace.jsonl: need at least two rows")
        starts: list[tuple[str, float]] = []
        for line in (directory / "worker_phases.txt").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "phase":
                starts.append((parts[1], float(parts[2])))
        phases = {name: (start, end) for (name, start), (_, end) in zip(starts, starts[1:])}
        period = statistics.median(b.t - a.t for a, b in zip(rows, rows[1:]))
        return cls(snapshot, rows, phases, period)

    @property
    def device(self) -> dict[str, Any]:
        return self.snapshot["devices"][0]

    @property
    def duration(self) -> float:
        """Length of one loop: first row to last row plus one sampling period."""
        return self.rows[-1].t - self.rows[0].t + self.period

    def value(self, key: str) -> Any:
        """A captured static value: ``uuid``, ``memory_v2``, ``system.driver`` …"""
        entry = self._entry(key)
        if not entry.get("ok"):
            raise KeyError(f"{key} was not captured successfully")
        return entry["value"]

    def cost_us(self, key: str) -> float:
        """Measured median cost of a call in µs (0 where the capture has none)."""
        try:
            return float(self._entry(key).get("median_us", 0.0))
        except KeyError:
            return 0.0

    def _entry(self, key: str) -> dict[str, Any]:
        if key.startswith("system."):
            return self.snapshot["system"][key.removeprefix("system.")]
        return self.device[key]

    def phase_of(self, index: int) -> str | None:
        """The worker phase row ``index`` was recorded in; None before the worker started."""
        t = self.rows[index].t
        for name, (start, end) in self.phases.items():
            if start <= t < end:
                return name
        return None

    def rows_in(self, phase: str) -> list[int]:
        """Indices of the rows recorded during ``phase``."""
        if phase not in self.phases:
            raise KeyError(f"unknown phase {phase!r}; the capture has {sorted(self.phases)}")
        return [i for i in range(len(self.rows)) if self.phase_of(i) == phase]


@dataclass(frozen=True)
class MigInstance:
    """A MIG device of the fake's first GPU: one compute instance in one GPU instance."""

    gpu_instance_id: int
    compute_instance_id: int
    memory_total_bytes: int
    memory_used_bytes: int = 0
    # (pid, used GPU memory in bytes) of the processes running on it.
    processes: tuple[tuple[int, int], ...] = ()
    # Slices of its GPU instance and of this compute instance (an H200 has 7 compute slices).
    gpu_instance_slices: int = 1
    compute_instance_slices: int = 1


@dataclass(frozen=True)
class Tenant:
    """Another process on the (non-MIG) GPUs: the recorded worker replayed ``offset_rows`` later."""

    pid: int
    offset_rows: int


# A tenant's sample, on a row where the recorded worker has none, is stamped this long before
# the row: later than any earlier row's sample (the capture's samples trail their row by
# -12…195 ms and rows are 250 ms apart), earlier than this row's.
_TENANT_STAMP_LEAD_US = 200_000


@dataclass(frozen=True)
class FakeHandle:
    """Opaque device handle (pynvml's is a ctypes pointer); ``mig`` indexes the MIG slot."""

    device: int
    mig: int | None = None


@dataclass
class _Failure:
    code: int
    calls: frozenset[str] | None


def _mig_uuid(gpu_uuid: str, gi: int, ci: int) -> str:
    # Real MIG UUIDs are "MIG-" + a UUID of their own; derive a stable one from the parent.
    body = gpu_uuid.removeprefix("GPU-")
    return f"MIG-{body[:-4]}{gi:02x}{ci:02x}"


class FakeNvml:
    """Replays a :class:`Capture` behind pynvml's call names. Thread-safe for one sampler."""

    def __init__(
        self,
        capture: Capture | Path | str | None = None,
        *,
        clock: Callable[[], float] | None = None,
        speed: float = 1.0,
        devices: int = 1,
        mig: Sequence[MigInstance] | None = None,
        call_costs: float = 0.0,
        tenants: Sequence[Tenant] = (),
    ) -> None:
        if devices < 1:
            raise ValueError("devices must be at least 1")
        if mig is not None and len(mig) > H200_MAX_MIG_DEVICES:
            raise ValueError(f"an H200 has at most {H200_MAX_MIG_DEVICES} MIG devices")
        self.capture = capture if isinstance(capture, Capture) else Capture.load(capture or DEFAULT_FIXTURES)
        self._clock = clock
        self._speed = speed
        self._started = clock() if clock is not None else 0.0
        self._devices = devices
        self._mig = tuple(mig) if mig is not None else None
        self._tenants = tuple(tenants)
        self._call_costs = call_costs
        self._lock = threading.Lock()
        self._init_count = 0
        self._cursor = 0  # manual mode: row index, counting loops (index // len(rows))
        self._failure: _Failure | None = None
        self.before_call: Callable[[str], None] | None = None
        self.calls: Counter[str] = Counter()
        self._offsets = [row.t - self.capture.rows[0].t for row in self.capture.rows]
        base = self.capture.value("memory_v2")
        # v1 "used" counts the driver's reservation; v2 reports it apart (see the capture README).
        self._reserved = int(base["reserved"])

    # -----------------------------------------------------------------------------------
    # Test and demo controls.

    def seek(self, index: int) -> None:
        """Replay row ``index`` next (manual mode); indices past the end continue in later loops."""
        self._cursor = index

    def advance(self, rows: int = 1) -> None:
        self._cursor += rows

    def seek_phase(self, phase: str, fraction: float = 0.5) -> int:
        """Move to the row ``fraction`` of the way through ``phase``; returns its index."""
        indices = self.capture.rows_in(phase)
        index = indices[min(len(indices) - 1, int(fraction * len(indices)))]
        self.seek(index)
        return index

    @property
    def row_index(self) -> int:
        """Index (within one loop) of the row the next call replays."""
        return self._position()[1]

    def current_row(self) -> TraceRow:
        return self.capture.rows[self.row_index]

    def fail(self, code: int, calls: Iterable[str] | None = None) -> None:
        """Make ``calls`` (every call when None) raise pynvml's error for ``code`` until :meth:`heal`."""
        self._failure = _Failure(code, frozenset(calls) if calls is not None else None)

    def heal(self) -> None:
        self._failure = None

    def uuid_of(self, device: int) -> str:
        uuid = str(self.capture.value("uuid"))
        return uuid if device == 0 else f"{uuid[:-4]}{device:04x}"

    # -----------------------------------------------------------------------------------
    # Machinery.

    def _position(self) -> tuple[int, int]:
        """(loop, row index) of the row being replayed."""
        rows = self.capture.rows
        if self._clock is None:
            return divmod(self._cursor, len(rows))
        elapsed = max(0.0, (self._clock() - self._started) * self._speed)
        loop, offset = divmod(elapsed, self.capture.duration)
        index = max(0, bisect.bisect_right(self._offsets, offset) - 1)
        return int(loop), index

    def _row(self) -> tuple[int, TraceRow]:
        loop, index = self._position()
        return loop, self.capture.rows[index]

    def _enter(self, name: str, cost_key: str | None = None, *, needs_init: bool = True) -> None:
        hook = self.before_call
        if hook is not None:
            hook(name)
        with self._lock:
            self.calls[name] += 1
            failure = self._failure
            initialized = self._init_count > 0
        if failure is not None and (failure.calls is None or name in failure.calls):
            raise N.error(failure.code)
        if needs_init and not initialized:
            raise N.error(N.ERROR_UNINITIALIZED)
        if self._call_costs > 0:
            if name == "nvmlInit":
                seconds = float(self.capture.snapshot.get("nvmlInit_s", 0.0))
            else:
                seconds = self.capture.cost_us(cost_key or _COST_KEYS.get(name, "")) / 1e6
            if seconds > 0:
                time.sleep(seconds * self._call_costs)

    def _device(self, handle: object) -> FakeHandle:
        if not isinstance(handle, FakeHandle) or not 0 <= handle.device < self._devices:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return handle

    def _mig_enabled(self, device: int) -> bool:
        return device == 0 and self._mig is not None

    def _mig_instance(self, handle: FakeHandle) -> MigInstance:
        assert self._mig is not None and handle.mig is not None
        return self._mig[handle.mig]

    def _not_on_mig(self, handle: FakeHandle) -> None:
        """Board-level readings are not answered for a MIG device handle."""
        if handle.mig is not None:
            raise N.error(N.ERROR_NOT_SUPPORTED)

    # -----------------------------------------------------------------------------------
    # Library and system.

    def nvmlInit(self) -> None:
        self._enter("nvmlInit", needs_init=False)
        with self._lock:
            self._init_count += 1

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.nvmlInit()

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        with self._lock:
            self._init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return str(self.capture.value("system.driver"))

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._enter("nvmlSystemGetNVMLVersion")
        return str(self.capture.value("system.nvml"))

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion_v2")
        return int(self.capture.value("system.cuda_driver"))

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return int(self.capture.value("system.cuda_driver"))

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return self._devices

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < self._devices:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return FakeHandle(index)

    # -----------------------------------------------------------------------------------
    # Identity.

    def nvmlDeviceGetIndex(self, handle: object) -> int:
        self._enter("nvmlDeviceGetIndex")
        return self._device(handle).device

    def nvmlDeviceGetName(self, handle: object) -> str:
        self._enter("nvmlDeviceGetName")
        device = self._device(handle)
        name = str(self.capture.value("name"))
        if device.mig is not None:
            instance = self._mig_instance(device)
            return f"{name} MIG {instance.memory_total_bytes // 2**30}gb"
        return name

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        self._enter("nvmlDeviceGetUUID")
        device = self._device(handle)
        if device.mig is not None:
            instance = self._mig_instance(device)
            return _mig_uuid(self.uuid_of(device.device), instance.gpu_instance_id, instance.compute_instance_id)
        return self.uuid_of(device.device)

    def nvmlDeviceGetSerial(self, handle: object) -> str:
        self._enter("nvmlDeviceGetSerial")
        self._not_on_mig(self._device(handle))
        return str(self.capture.value("serial"))

    def nvmlDeviceGetMinorNumber(self, handle: object) -> int:
        self._enter("nvmlDeviceGetMinorNumber")
        return self._device(handle).device

    def nvmlDeviceGetPciInfo(self, handle: object) -> Any:
        self._enter("nvmlDeviceGetPciInfo")
        self._device(handle)
        return N.FriendlyObject(dict(self.capture.value("pci")))

    # -----------------------------------------------------------------------------------
    # Readings from the trace.

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates")
        device = self._device(handle)
        if device.mig is not None or self._mig_enabled(device.device):
            # NVML: utilization is not reported for MIG-enabled GPUs or MIG devices.
            raise N.error(N.ERROR_NOT_SUPPORTED)
        _, row = self._row()
        return N.Utilization(gpu=row.util_gpu, memory=row.util_memory)

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: int | None = None) -> Any:
        self._enter("nvmlDeviceGetMemoryInfo_v2" if version else "nvmlDeviceGetMemoryInfo")
        device = self._device(handle)
        if version and version != N.MEMORY_V2:
            raise N.error(N.ERROR_ARGUMENT_VERSION_MISMATCH)
        if device.mig is not None:
            instance = self._mig_instance(device)
            total, used, reserved = instance.memory_total_bytes, instance.memory_used_bytes, 0
        elif self._mig_enabled(device.device):
            _, row = self._row()
            assert self._mig is not None
            total = row.mem_total
            reserved = self._reserved
            used = sum(instance.memory_used_bytes for instance in self._mig)
        else:
            _, row = self._row()
            total, reserved, used = row.mem_total, self._reserved, row.mem_used - self._reserved
        if version:
            return N.MemoryV2(version=version, total=total, reserved=reserved, free=total - reserved - used, used=used)
        return N.Memory(total=total, free=total - reserved - used, used=used + reserved)

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        self._enter("nvmlDeviceGetPowerUsage")
        self._not_on_mig(self._device(handle))
        return self._row()[1].power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        self._enter("nvmlDeviceGetEnforcedPowerLimit")
        self._not_on_mig(self._device(handle))
        return int(self.capture.value("power_limit_mw"))

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        self._enter("nvmlDeviceGetTotalEnergyConsumption")
        self._not_on_mig(self._device(handle))
        loop, row = self._row()
        rows = self.capture.rows
        # Each loop adds the energy one pass of the trace used, so the counter keeps rising.
        per_loop = rows[-1].energy_mj - rows[0].energy_mj
        return row.energy_mj + loop * per_loop

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature")
        self._not_on_mig(self._device(handle))
        if sensor != N.TEMPERATURE_GPU:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return self._row()[1].temp_c

    def nvmlDeviceGetClockInfo(self, handle: object, clock_type: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", "clock_sm" if clock_type == N.CLOCK_SM else "clock_mem")
        self._not_on_mig(self._device(handle))
        if clock_type == N.CLOCK_SM:
            return self._row()[1].sm_mhz
        if clock_type == N.CLOCK_MEM:
            return int(self.capture.value("clock_mem"))
        raise N.error(N.ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetMaxClockInfo(self, handle: object, clock_type: int) -> int:
        self._enter("nvmlDeviceGetMaxClockInfo")
        self._not_on_mig(self._device(handle))
        if clock_type != N.CLOCK_SM:
            raise N.error(N.ERROR_NOT_SUPPORTED)
        return int(self.capture.value("max_clock_sm"))

    def nvmlDeviceGetPerformanceState(self, handle: object) -> int:
        self._enter("nvmlDeviceGetPerformanceState")
        self._not_on_mig(self._device(handle))
        return int(self.capture.value("pstate"))

    def nvmlDeviceGetFanSpeed(self, handle: object) -> int:
        self._enter("nvmlDeviceGetFanSpeed")
        self._device(handle)
        raise N.error(int(self.capture.device["fan"].get("code", N.ERROR_NOT_SUPPORTED)))

    def nvmlDeviceGetPcieThroughput(self, handle: object, counter: int) -> int:
        key = "pcie_tx_kbs" if counter == N.PCIE_TX_BYTES else "pcie_rx_kbs"
        self._enter("nvmlDeviceGetPcieThroughput", key)
        self._not_on_mig(self._device(handle))
        if counter not in (N.PCIE_TX_BYTES, N.PCIE_RX_BYTES):
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return int(self.capture.value(key))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[Any]:
        self._enter("nvmlDeviceGetComputeRunningProcesses")
        device = self._device(handle)
        if device.mig is not None:
            instance = self._mig_instance(device)
            return [self._process(pid, used, instance) for pid, used in instance.processes]
        if self._mig_enabled(device.device):
            assert self._mig is not None
            return [self._process(pid, used, inst) for inst in self._mig for pid, used in inst.processes]
        _, row = self._row()
        listed = [N.FriendlyObject(dict(proc)) for proc in row.procs]
        for tenant, source in self._tenant_rows():
            for proc in source.procs:
                listed.append(N.FriendlyObject({**proc, "pid": tenant.pid}))
        return listed

    def _tenant_rows(self) -> list[tuple[Tenant, TraceRow]]:
        index, rows = self.row_index, self.capture.rows
        return [(tenant, rows[(index + tenant.offset_rows) % len(rows)]) for tenant in self._tenants]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: object) -> list[Any]:
        self._enter("nvmlDeviceGetGraphicsRunningProcesses")
        self._device(handle)
        return []

    def nvmlDeviceGetProcessUtilization(self, handle: object, timeStamp: int) -> list[Any]:  # noqa: N803 - pynvml's name
        self._enter("nvmlDeviceGetProcessUtilization")
        device = self._device(handle)
        if device.mig is not None or self._mig_enabled(device.device):
            raise N.error(N.ERROR_NOT_SUPPORTED)
        loop, row = self._row()
        recorded = list(row.proc_util or ())
        stamp = recorded[0]["timeStamp"] if recorded else int(row.t * 1e6) - _TENANT_STAMP_LEAD_US
        for tenant, source in self._tenant_rows():
            recorded += [{**s, "pid": tenant.pid, "timeStamp": stamp} for s in source.proc_util or ()]
        if not recorded:
            raise N.error(N.ERROR_NOT_FOUND)
        shift = int(round(loop * self.capture.duration * 1e6))
        samples = [
            N.ProcessUtilizationSample(
                pid=s["pid"],
                timeStamp=s["timeStamp"] + shift,
                smUtil=s["smUtil"],
                memUtil=s["memUtil"],
                encUtil=s["encUtil"],
                decUtil=s["decUtil"],
            )
            for s in recorded
            if s["timeStamp"] + shift > timeStamp
        ]
        if not samples:
            # NVML answers Not Found when no sample is newer than the timestamp given.
            raise N.error(N.ERROR_NOT_FOUND)
        return samples

    # -----------------------------------------------------------------------------------
    # MIG.

    def nvmlDeviceGetMigMode(self, handle: object) -> list[int]:
        self._enter("nvmlDeviceGetMigMode")
        device = self._device(handle)
        if device.mig is not None:
            raise N.error(N.ERROR_NOT_SUPPORTED)
        mode = N.MIG_ENABLE if self._mig_enabled(device.device) else 0
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount")
        self._not_on_mig(self._device(handle))
        return H200_MAX_MIG_DEVICES

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex")
        device = self._device(handle)
        if device.mig is not None or not self._mig_enabled(device.device):
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        assert self._mig is not None
        if not 0 <= index < H200_MAX_MIG_DEVICES:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        if index >= len(self._mig):
            raise N.error(N.ERROR_NOT_FOUND)
        return FakeHandle(device.device, index)

    def nvmlDeviceIsMigDeviceHandle(self, handle: object) -> bool:
        self._enter("nvmlDeviceIsMigDeviceHandle")
        return self._device(handle).mig is not None

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: object) -> FakeHandle:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        device = self._device(handle)
        if device.mig is None:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return FakeHandle(device.device)

    def nvmlDeviceGetGpuInstanceId(self, handle: object) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId")
        device = self._device(handle)
        if device.mig is None:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return self._mig_instance(device).gpu_instance_id

    def nvmlDeviceGetAttributes(self, handle: object) -> Any:
        """Slice counts and memory of a MIG device (NVML answers this for MIG handles only)."""
        self._enter("nvmlDeviceGetAttributes")
        device = self._device(handle)
        if device.mig is None:
            raise N.error(N.ERROR_NOT_SUPPORTED)
        instance = self._mig_instance(device)
        return N.DeviceAttributes(
            # An H200's 132 SMs in 7 slices (what a 1g instance gets).
            multiprocessorCount=16 * instance.compute_instance_slices,
            gpuInstanceSliceCount=instance.gpu_instance_slices,
            computeInstanceSliceCount=instance.compute_instance_slices,
            memorySizeMB=instance.memory_total_bytes // 2**20,
        )

    def nvmlDeviceGetComputeInstanceId(self, handle: object) -> int:
        self._enter("nvmlDeviceGetComputeInstanceId")
        device = self._device(handle)
        if device.mig is None:
            raise N.error(N.ERROR_INVALID_ARGUMENT)
        return self._mig_instance(device).compute_instance_id

    @staticmethod
    def _process(pid: int, used: int, instance: MigInstance) -> Any:
        return N.FriendlyObject(
            {
                "pid": pid,
                "usedGpuMemory": used,
                "gpuInstanceId": instance.gpu_instance_id,
                "computeInstanceId": instance.compute_instance_id,
            }
        )


def load_fake(fixtures: Path | str | None = None, *, realtime: bool = True, speed: float = 1.0) -> FakeNvml:
    """A fake replaying ``fixtures`` (the packaged H200 capture by default), in real time
    and looping when ``realtime``: what the demo and ``model-health node --fake-nvml`` run."""
    return FakeNvml(fixtures or DEFAULT_FIXTURES, clock=time.monotonic if realtime else None, speed=speed)


def real_or_fake(fixtures: Path | str | None = None) -> tuple[Any, str]:
    """The real NVML when a driver answers here, else the realtime fake: (nvml, description).

    For the demo, which should show a real GPU when there is one and the recorded H200
    otherwise. The probe initialises NVML once and shuts it down again.
    """
    real = N.real_nvml()
    try:
        real.nvmlInit()
    except N.NVMLError as exc:
        return load_fake(fixtures), f"fake NVML replaying {fixtures or DEFAULT_FIXTURES} ({N.describe(exc)})"
    try:
        real.nvmlShutdown()
    except N.NVMLError:
        pass
    return real, "real NVML"


__all__ = [
    "Capture",
    "FakeHandle",
    "FakeNvml",
    "MigInstance",
    "Tenant",
    "TraceRow",
    "DEFAULT_FIXTURES",
    "PHASES",
    "load_fake",
    "real_or_fake",
]
