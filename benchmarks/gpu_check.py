"""GPU check: the real collector beside ``nvidia-smi`` while PyTorch loads the GPU, and the GPU
cost attribution of two processes sharing it.

    python3 benchmarks/gpu_check.py [--seconds 60] [--interval 0.5] [--out DIR] [--dry-run]

For a machine with an NVIDIA GPU, CUDA and PyTorch (the device machine has all three, plus
nvidia-ml-py, prometheus-client and rich; nothing else of the project is needed: the repo
root goes on ``sys.path`` and only ``exporter.gpu`` is imported, which needs neither pydantic
nor the virtual environment).

What it does, in one run (~``--seconds`` plus PyTorch start-up, well under 3 minutes):

1. Times the sampler's own NVML reads on the idle GPU: the every-interval read (cheap calls)
   and the slow read (adds the energy counter and PCIe throughput), median of several.
2. Starts the real collector (``start_gpu_collector``, mode ``node``, real pynvml) on its
   own ``CollectorRegistry``.
3. Starts two PyTorch workers in subprocesses (bf16 8192² matmuls on ``cuda:0``), released
   together once both are ready. Worker A runs five phases of ``--seconds / 5`` each:
   ``idle``, ``saturated`` (back-to-back matmuls), ``half`` (50 % duty in 100 ms cycles),
   ``memory`` (holds an extra 16 GB, idle), ``shared`` (saturated again). Worker B sleeps
   through the first four and runs 30 % duty in ``shared``: the GPU is time-sliced between
   them. The collector attributes each worker's process to a model of its own (``worker-a``,
   ``worker-b``), as the node agent attributes pods.
4. About once a second, after a settling time at the start of each phase, scrapes the
   registry (``generate_latest`` → ``text_string_to_metric_families``) and runs
   ``nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total,power.draw,
   temperature.gpu,clocks.sm`` and ``nvidia-smi --query-compute-apps=pid,used_memory``.
   In ``shared`` it also runs ``nvidia-smi pmon -c 1 -s u`` (per-process SM %).
5. Prints, per phase and metric, the medians of ours and nvidia-smi's, their difference and
   whether it is within a tolerance (utilization ±10 points, memory ±64 MiB, power ±10 %,
   temperature ±2 °C, SM clock ±10 %), plus the scrape time; writes ``gpu_check.json`` and
   ``gpu_check.md`` to ``--out`` (default ``$OUT`` when set).
6. Attribution, over the ``shared`` phase (first to last observation): the two models' energy
   (``model_health_model_gpu_energy_joules_total`` increases) against our device energy counter
   (must sum to it within 1 %), our device energy against nvidia-smi's ``power.draw``
   integrated over the same observations (±10 %), and worker A's share of the energy against
   its share of nvidia-smi pmon's SM % (±10 points).

Both sides read the same NVML counters at slightly different moments, so steady phases
should agree closely; the half-duty phase shows sampling jitter. nvidia-smi's
``memory.used`` excludes the driver-reserved memory, as our v2 ``memory_used_bytes`` does.

``--dry-run`` runs the same code path without a GPU: the fake NVML replays the recorded H200
trace (one trace phase per check phase) with a second process replaying the recorded worker
later in the trace (``exporter.gpu.fake.Tenant``), and "nvidia-smi" is the trace row rendered
in nvidia-smi's CSV and pmon formats. It proves the script, not the GPU: the trace advances in
whole rows between observations, so of the attribution checks only "models sum to the device
energy" means anything there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from exporter.gpu import ModelRef, PodProcesses, start_gpu_collector  # noqa: E402
from exporter.gpu.sampler import NvmlReader  # noqa: E402

MIB = 2**20
PHASES = ("idle", "saturated", "half", "memory", "shared")
# Check phase → the recorded trace phase the dry run replays for it.
DRY_PHASES = {"idle": "idle", "saturated": "heavy", "half": "half", "memory": "mem_ramp", "shared": "heavy"}
# The models the two workers' processes are attributed to.
MODEL_A, MODEL_B = "worker-a", "worker-b"
# Worker B's duty cycle in the shared phase (A runs flat out).
TENANT_DUTY = 0.3
# The dry run's second process: the recorded worker replayed 31 rows (~8 s) later, so while
# the trace's worker runs its full matmuls, the tenant runs the 50 % duty phase.
DRY_TENANT_PID, DRY_TENANT_OFFSET = 9001, 31
SMI_GPU_FIELDS = (
    "uuid",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "power.draw",
    "temperature.gpu",
    "clocks.sm",
)

WORKER = r"""
import sys, time, torch
# name=seconds[:duty]; a busy phase with no duty runs flat out.
phases = []
for arg in sys.argv[1:]:
    name, spec = arg.split("=")
    seconds, _, duty = spec.partition(":")
    phases.append((name, float(seconds), float(duty) if duty else None))
dev = "cuda:0"
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
b = torch.randn_like(a)
(a @ b).sum().item()
torch.cuda.synchronize()
print("ready", time.time(), flush=True)
sys.stdin.readline()  # both workers start their phases together
keep = []

def busy(seconds, duty):
    end = time.time() + seconds
    while time.time() < end:
        start = time.time()
        while time.time() - start < 0.1 * duty:
            for _ in range(4):
                a @ b
            torch.cuda.synchronize()
        time.sleep(0.1 * (1 - duty))

for name, seconds, duty in phases:
    print("phase", name, time.time(), flush=True)
    if duty is not None:
        busy(seconds, duty)
    elif name in ("saturated", "shared"):
        busy(seconds, 1.0)
    elif name == "half":
        busy(seconds, 0.5)
    elif name == "memory":
        keep.append(torch.empty(int(16e9), dtype=torch.uint8, device=dev))
        keep[-1].fill_(1)
        torch.cuda.synchronize()
        time.sleep(seconds)
    else:
        time.sleep(seconds)
print("phase end", time.time(), flush=True)
"""


# ---------------------------------------------------------------------------------------------
# What is compared.


@dataclass(frozen=True)
class Check:
    metric: str  # row label
    ours: Callable[[dict[str, Any]], float | None]
    smi: str  # nvidia-smi field, or "app" for the worker's process memory
    tolerance: Callable[[float, float], bool]
    tolerance_text: str


def _absolute(limit: float) -> Callable[[float, float], bool]:
    return lambda ours, smi: abs(ours - smi) <= limit


def _relative(share: float) -> Callable[[float, float], bool]:
    return lambda ours, smi: abs(ours - smi) <= share * max(abs(smi), 1e-9)


def _scaled(key: str, factor: float) -> Callable[[dict[str, Any]], float | None]:
    return lambda reading: None if reading.get(key) is None else reading[key] * factor


CHECKS = (
    Check("utilization (%)", _scaled("utilization", 100.0), "utilization.gpu", _absolute(10.0), "±10 points"),
    Check("memory used (MiB)", _scaled("memory_used", 1 / MIB), "memory.used", _absolute(64.0), "±64 MiB"),
    Check("memory total (MiB)", _scaled("memory_total", 1 / MIB), "memory.total", _absolute(1.0), "±1 MiB"),
    Check("power (W)", _scaled("power", 1.0), "power.draw", _relative(0.10), "±10 %"),
    Check("temperature (°C)", _scaled("temperature", 1.0), "temperature.gpu", _absolute(2.0), "±2 °C"),
    Check("SM clock (MHz)", _scaled("sm_clock", 1e-6), "clocks.sm", _relative(0.10), "±10 %"),
    Check("worker memory (MiB)", _scaled("worker_memory", 1 / MIB), "app", _absolute(64.0), "±64 MiB"),
)


def read_ours(registry: CollectorRegistry, uuid: str | None, worker_pid: int | None) -> tuple[dict[str, Any], float]:
    """Scrape the registry the way Prometheus would; (values of one GPU, scrape seconds)."""
    started = time.perf_counter()
    text = generate_latest(registry).decode()
    elapsed = time.perf_counter() - started
    names = {
        "model_health_gpu_utilization_ratio": "utilization",
        "model_health_gpu_memory_used_bytes": "memory_used",
        "model_health_gpu_memory_total_bytes": "memory_total",
        "model_health_gpu_power_watts": "power",
        "model_health_gpu_temperature_celsius": "temperature",
        "model_health_gpu_sm_clock_hertz": "sm_clock",
        "model_health_gpu_collector_up": "up",
        "model_health_gpu_energy_joules_total": "energy",
    }
    values: dict[str, Any] = {"processes": {}, "models": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if uuid is not None and sample.labels.get("gpu_uuid") not in (None, uuid):
                continue
            if sample.name in names:
                values[names[sample.name]] = sample.value
            elif sample.name == "model_health_gpu_info":
                values["uuid"] = sample.labels["gpu_uuid"]
                values["name"] = sample.labels["gpu_model"]
                values["driver"] = sample.labels["driver_version"]
            elif sample.name == "model_health_gpu_process_memory_used_bytes":
                values["processes"][int(sample.labels["pid"])] = sample.value
            elif sample.name == "model_health_model_gpu_energy_joules_total":
                values["models"][sample.labels["model"]] = sample.value
    if worker_pid is not None:
        values["worker_memory"] = values["processes"].get(worker_pid)
    return values, elapsed


def parse_smi_gpus(text: str) -> dict[str, dict[str, float | None]]:
    """``nvidia-smi --query-gpu=uuid,… --format=csv,noheader,nounits`` → {uuid: {field: value}}."""
    gpus = {}
    for line in text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(SMI_GPU_FIELDS):
            continue
        gpus[cells[0]] = {name: _number(cell) for name, cell in zip(SMI_GPU_FIELDS[1:], cells[1:])}
    return gpus


def parse_smi_apps(text: str) -> dict[int, float]:
    """``nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits`` → {pid: MiB}."""
    apps = {}
    for line in text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) == 2 and cells[0].isdigit():
            value = _number(cells[1])
            if value is not None:
                apps[int(cells[0])] = value
    return apps


def parse_pmon(text: str) -> dict[int, float]:
    """``nvidia-smi pmon -c 1 -s u`` → {pid: SM %}; processes with ``-`` (no sample) are left out."""
    out: dict[int, float] = {}
    for line in text.splitlines():
        cells = line.split()
        if not cells or line.lstrip().startswith("#") or len(cells) < 4 or not cells[1].isdigit():
            continue
        sm = _number(cells[3])
        if sm is not None:
            out[int(cells[1])] = out.get(int(cells[1]), 0.0) + sm
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


# ---------------------------------------------------------------------------------------------
# The two environments: a real GPU, or the fake NVML replaying the capture.


class RealGpu:
    """Real pynvml, nvidia-smi, and a PyTorch worker subprocess."""

    dry_run = False

    def __init__(self, phase_seconds: float) -> None:
        self.nvml = None  # start_gpu_collector's default: the real library
        self._phase_seconds = phase_seconds
        self._phase = "starting"
        self._process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._tenant: subprocess.Popen[str] | None = None
        self._tenant_ready = threading.Event()
        self.notes: list[str] = []
        self.worker_pid: int | None = None
        self.tenant_pid: int | None = None
        self._idle_until: float | None = None
        if shutil.which("nvidia-smi") is None:
            self.notes.append("nvidia-smi not on PATH: its column is empty")

    @property
    def phase(self) -> str:
        return self._phase

    def start_load(self) -> bool:
        args = [f"{name}={self._phase_seconds:.2f}" for name in PHASES]
        before = self._phase_seconds * (len(PHASES) - 1)
        tenant_args = [f"wait={before:.2f}", f"shared={self._phase_seconds:.2f}:{TENANT_DUTY}"]
        self._process = self._spawn(args)
        self._tenant = self._spawn(tenant_args)
        self.worker_pid, self.tenant_pid = self._process.pid, self._tenant.pid
        threading.Thread(target=self._follow, daemon=True).start()
        threading.Thread(target=self._follow_tenant, daemon=True).start()
        if not (self._ready.wait(180) and self._tenant_ready.wait(180)):
            self.notes.append("PyTorch workers did not start within 180 s")
        elif self._process.poll() is None and self._tenant.poll() is None:
            for worker in (self._process, self._tenant):
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            return True
        else:
            self.notes.append(
                f"PyTorch worker exited with status {self._process.returncode} / {self._tenant.returncode}"
            )
        # No load: still compare the idle GPU for one phase's length.
        self.stop()
        self._phase = "idle"
        self._idle_until = time.monotonic() + self._phase_seconds
        return False

    @staticmethod
    def _spawn(args: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _follow_tenant(self) -> None:
        assert self._tenant is not None and self._tenant.stdout is not None
        for line in self._tenant.stdout:
            if line.split()[:1] == ["ready"]:
                self._tenant_ready.set()
            elif line.strip() and not line.startswith("phase"):
                self.notes.append("worker B: " + line.strip()[:200])
        self._tenant_ready.set()

    def _follow(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            parts = line.split()
            if parts[:1] == ["ready"]:
                self._ready.set()
            elif parts[:1] == ["phase"] and len(parts) >= 2:
                self._phase = parts[1]
                if parts[1] == "end":
                    self._done.set()
            elif line.strip():
                self.notes.append("worker: " + line.strip()[:200])
        self._ready.set()  # the worker died: don't wait for it
        self._done.set()

    def finished(self) -> bool:
        if self._idle_until is not None:
            return time.monotonic() >= self._idle_until
        return self._done.is_set()

    def tick(self) -> None:
        pass

    def smi_gpus(self) -> dict[str, dict[str, float | None]]:
        return parse_smi_gpus(
            _run(["nvidia-smi", f"--query-gpu={','.join(SMI_GPU_FIELDS)}", "--format=csv,noheader,nounits"])
        )

    def smi_apps(self) -> dict[int, float]:
        return parse_smi_apps(
            _run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        )

    def smi_pmon(self) -> dict[int, float]:
        return parse_pmon(_run(["nvidia-smi", "pmon", "-c", "1", "-s", "u"]))

    def stop(self) -> None:
        for worker in (self._process, self._tenant):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


class DryRun:
    """The fake NVML replaying the H200 trace; 'nvidia-smi' renders the replayed row."""

    dry_run = True

    def __init__(self, phase_seconds: float) -> None:
        from exporter.gpu.fake import FakeNvml, Tenant

        # Sleep each call its recorded cost, so the timings show the real relative costs. A
        # tenant replays the recorded worker later in the trace: two processes share the GPU.
        self.nvml = FakeNvml(call_costs=1.0, tenants=[Tenant(DRY_TENANT_PID, DRY_TENANT_OFFSET)])
        self._phase_seconds = phase_seconds
        self._phases = list(PHASES)
        self._phase = "starting"
        self._phase_started = self._ticked = 0.0
        self.notes = [
            "dry run: fake NVML replaying the recorded H200 trace; no PyTorch, no nvidia-smi",
            "dry run: the trace advances in whole rows between observations; of the attribution checks only "
            "'models sum to the device energy' is meaningful",
        ]
        self.worker_pid: int | None = None
        self.tenant_pid: int | None = DRY_TENANT_PID

    @property
    def phase(self) -> str:
        return self._phase

    def start_load(self) -> bool:
        self._next_phase()
        return True

    def _next_phase(self) -> None:
        if not self._phases:
            self._phase = "end"
            return
        self._phase = self._phases.pop(0)
        self._phase_started = self._ticked = time.monotonic()
        self.nvml.seek_phase(DRY_PHASES[self._phase], fraction=0.25)
        row = self.nvml.current_row()
        self.worker_pid = row.procs[0]["pid"] if row.procs else self.worker_pid

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._phase_started >= self._phase_seconds:
            self._next_phase()
        else:
            # Replay the trace at its own pace, so its energy counter and power agree in time.
            rows = int((now - self._ticked) / self.nvml.capture.period)
            self.nvml.advance(rows)
            self._ticked += rows * self.nvml.capture.period

    def finished(self) -> bool:
        return self._phase == "end"

    def smi_gpus(self) -> dict[str, dict[str, float | None]]:
        row = self.nvml.current_row()
        reserved = self.nvml.capture.value("memory_v2")["reserved"]
        line = ", ".join(
            [
                self.nvml.uuid_of(0),
                str(row.util_gpu),
                str((row.mem_used - reserved) // MIB),
                str(row.mem_total // MIB),
                f"{row.power_mw / 1000:.2f}",
                str(row.temp_c),
                str(row.sm_mhz),
            ]
        )
        return parse_smi_gpus(line)

    def smi_apps(self) -> dict[int, float]:
        row = self.nvml.current_row()
        return parse_smi_apps("\n".join(f"{p['pid']}, {p['usedGpuMemory'] // MIB}" for p in row.procs))

    def smi_pmon(self) -> dict[int, float]:
        """The replayed row's per-process samples in pmon's layout (pmon reads the same NVML buffer)."""
        from exporter.gpu.fake import FakeHandle
        from exporter.gpu.nvml import NVMLError

        try:
            samples = self.nvml.nvmlDeviceGetProcessUtilization(FakeHandle(0), 0)
        except NVMLError:
            samples = []
        lines = ["# gpu         pid   type     sm    mem    enc    dec    jpg    ofa    command"]
        lines += [
            f"    0 {s.pid:>11}     C {s.smUtil:>6} {s.memUtil:>6}      -      -      -      -    python"
            for s in samples
        ]
        return parse_pmon("\n".join(lines))

    def stop(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class Observation:
    phase: str
    ours: dict[str, Any]
    smi: dict[str, float | None]
    apps: dict[int, float]
    scrape_seconds: float
    at: float = 0.0
    pmon: dict[int, float] = field(default_factory=dict)


@dataclass
class Result:
    device: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    attribution: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False


def time_reads(nvml: Any, repeats: int = 20) -> dict[str, float]:
    """Median milliseconds of the sampler's every-interval read and of its slow read."""
    from exporter.gpu.nvml import real_nvml

    reader = NvmlReader(nvml if nvml is not None else real_nvml(), slow_queries=True)
    try:
        first = reader.read(time.time(), slow_due=True)  # initialises NVML, not timed
        if not first.up:
            return {"error": first.reason}  # type: ignore[dict-item]
        fast, slow = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            reader.read(time.time(), slow_due=False)
            fast.append(time.perf_counter() - started)
        for _ in range(max(3, repeats // 5)):
            started = time.perf_counter()
            reader.read(time.time(), slow_due=True)
            slow.append(time.perf_counter() - started)
        return {"fast_read_ms": statistics.median(fast) * 1e3, "slow_read_ms": statistics.median(slow) * 1e3}
    finally:
        reader.close()


def run(env: RealGpu | DryRun, seconds: float, interval: float, settle: float) -> Result:
    result = Result(dry_run=env.dry_run)
    result.timing.update(time_reads(env.nvml))
    registry = CollectorRegistry()
    # The energy counter every second: the shared phase spans several of its readings.
    config = SimpleNamespace(
        mode="node", interval_seconds=interval, slow_interval_seconds=max(1.0, interval), slow_queries=True
    )
    # Each worker's process is a model of its own (the node agent would name its pod's model).
    models: dict[str, ModelRef] = {}
    ownership = PodProcesses(models.get, holder_of=lambda process: f"pid:{process.pid}")
    runtime = start_gpu_collector(config, registry, nvml=env.nvml, ownership=ownership)
    observations: list[Observation] = []
    try:
        runtime.wait_for_sample(30)
        ours, _ = read_ours(registry, None, None)
        uuid = ours.get("uuid")
        result.device = {k: ours.get(k) for k in ("name", "uuid", "driver", "up")}
        if ours.get("up") != 1.0:
            result.notes.append(f"collector_up is {ours.get('up')}: {runtime.ready()[1]}")
        if not env.start_load():
            result.notes.append("no load: the comparison covers whatever phase the GPU is in")
        for pid, model in ((env.worker_pid, MODEL_A), (env.tenant_pid, MODEL_B)):
            if pid is not None:
                models[f"pid:{pid}"] = ModelRef(model, "1")
        deadline = time.monotonic() + seconds + 60
        phase, phase_since = env.phase, time.monotonic()
        while not env.finished() and time.monotonic() < deadline:
            if env.phase != phase:
                phase, phase_since = env.phase, time.monotonic()
            if time.monotonic() - phase_since >= settle and phase in PHASES:
                # Let the sampler see the same state nvidia-smi is about to.
                time.sleep(interval)
                smi = env.smi_gpus()
                at = time.monotonic()
                ours, scrape = read_ours(registry, uuid, env.worker_pid)
                apps = env.smi_apps()
                pmon = env.smi_pmon() if phase == "shared" else {}
                if env.phase == phase:  # a phase change mid-observation would mix states
                    observations.append(Observation(phase, ours, smi.get(uuid or "", {}), apps, scrape, at, pmon))
            time.sleep(max(0.0, 1.0 - interval))
            env.tick()
    finally:
        env.stop()
        runtime.stop()
    result.notes += env.notes
    result.rows = summarise(observations, env.worker_pid)
    result.attribution = attribution(observations, env.worker_pid, env.tenant_pid)
    scrapes = [o.scrape_seconds for o in observations]
    if scrapes:
        result.timing["scrape_ms_median"] = statistics.median(scrapes) * 1e3
        result.timing["scrapes"] = len(scrapes)
    return result


def summarise(observations: list[Observation], worker_pid: int | None) -> list[dict[str, Any]]:
    rows = []
    for phase in PHASES:
        seen = [o for o in observations if o.phase == phase]
        for check in CHECKS:
            ours_values, smi_values = [], []
            for o in seen:
                mine = check.ours(o.ours)
                theirs = (
                    o.apps.get(worker_pid) if check.smi == "app" and worker_pid is not None else o.smi.get(check.smi)
                )
                if check.smi == "app" and theirs is None:
                    continue
                if mine is not None and theirs is not None:
                    ours_values.append(mine)
                    smi_values.append(theirs)
            row: dict[str, Any] = {
                "phase": phase,
                "metric": check.metric,
                "n": len(ours_values),
                "tolerance": check.tolerance_text,
            }
            if ours_values:
                ours_median, smi_median = statistics.median(ours_values), statistics.median(smi_values)
                row.update(
                    ours=round(ours_median, 2),
                    nvidia_smi=round(smi_median, 2),
                    diff=round(ours_median - smi_median, 2),
                    within=bool(check.tolerance(ours_median, smi_median)),
                )
            rows.append(row)
    return rows


def attribution(observations: list[Observation], worker_pid: int | None, tenant_pid: int | None) -> dict[str, Any]:
    """The shared phase, first to last observation: our per-model energy against our device
    counter and nvidia-smi's integrated power, and worker A's share against pmon's SM share."""
    seen = [o for o in observations if o.phase == "shared"]
    if len(seen) < 2:
        return {"error": f"{len(seen)} observation(s) in the shared phase; need two"}
    first, last = seen[0], seen[-1]
    out: dict[str, Any] = {"seconds": round(last.at - first.at, 2), "observations": len(seen)}
    energy = {
        model: last.ours["models"].get(model, 0.0) - first.ours["models"].get(model, 0.0)
        for model in (MODEL_A, MODEL_B)
    }
    out["model_joules"] = {model: round(value, 1) for model, value in energy.items()}
    device = None
    if first.ours.get("energy") is not None and last.ours.get("energy") is not None:
        device = last.ours["energy"] - first.ours["energy"]
        out["device_joules"] = round(device, 1)
    powers = [(o.at, o.smi.get("power.draw")) for o in seen]
    powers = [(at, watts) for at, watts in powers if watts is not None]
    if len(powers) >= 2:
        out["nvidia_smi_joules"] = round(
            sum((b_at - a_at) * (a_w + b_w) / 2 for (a_at, a_w), (b_at, b_w) in zip(powers, powers[1:])), 1
        )
    total = sum(energy.values())
    checks: dict[str, bool] = {}
    if device:
        out["models_over_device"] = round(total / device, 4)
        checks["models sum to the device energy (±1 %)"] = abs(total / device - 1) <= 0.01
    if device and out.get("nvidia_smi_joules"):
        out["device_over_nvidia_smi"] = round(device / out["nvidia_smi_joules"], 4)
        checks["device energy vs nvidia-smi power × time (±10 %)"] = abs(out["device_over_nvidia_smi"] - 1) <= 0.10
    sm = {pid: sum(o.pmon.get(pid, 0.0) for o in seen) for pid in (worker_pid, tenant_pid) if pid is not None}
    if total > 0 and sum(sm.values()) > 0 and worker_pid in sm:
        out["share_a_ours"] = round(energy[MODEL_A] / total, 3)
        out["share_a_pmon"] = round(sm[worker_pid] / sum(sm.values()), 3)
        checks["worker A's share vs pmon's SM share (±10 points)"] = (
            abs(out["share_a_ours"] - out["share_a_pmon"]) <= 0.10
        )
    elif not any(o.pmon for o in seen):
        out["note"] = "nvidia-smi pmon gave no per-process samples (its pids may not be ours: a PID namespace?)"
    out["checks"] = checks
    return out


def markdown(result: Result) -> str:
    lines = [
        f"# GPU check{' (dry run)' if result.dry_run else ''}",
        "",
        f"Device: {result.device.get('name')} {result.device.get('uuid')}, driver {result.device.get('driver')}",
        "",
        "| phase | metric | ours | nvidia-smi | diff | n | within |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result.rows:
        within = "—" if "within" not in row else ("yes" if row["within"] else f"NO ({row['tolerance']})")
        lines.append(
            f"| {row['phase']} | {row['metric']} | {row.get('ours', '—')} | {row.get('nvidia_smi', '—')} | "
            f"{row.get('diff', '—')} | {row['n']} | {within} |"
        )
    if result.attribution:
        lines += ["", "Attribution (shared phase): " + json.dumps(result.attribution, sort_keys=True)]
    lines += [
        "",
        "Timing: "
        + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.timing.items()),
    ]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def show(result: Result) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown(result))
        return
    console = Console()
    title = f"GPU check{' (dry run)' if result.dry_run else ''}: {result.device.get('name')} driver {result.device.get('driver')}"
    table = Table(title=title)
    for column in ("phase", "metric", "ours", "nvidia-smi", "diff", "n", "within"):
        table.add_column(column, justify="left" if column in ("phase", "metric") else "right")
    for row in result.rows:
        within = (
            "—" if "within" not in row else ("[green]yes[/]" if row["within"] else f"[red]no[/] ({row['tolerance']})")
        )
        table.add_row(
            row["phase"],
            row["metric"],
            str(row.get("ours", "—")),
            str(row.get("nvidia_smi", "—")),
            str(row.get("diff", "—")),
            str(row["n"]),
            within,
        )
    console.print(table)
    console.print(
        "timing: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.timing.items())
    )
    if result.attribution:
        console.print("attribution (shared phase): " + json.dumps(result.attribution, sort_keys=True))
    for note in result.notes:
        console.print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the four load phases together.")
    parser.add_argument("--interval", type=float, default=0.5, help="The collector's sampling interval.")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    parser.add_argument(
        "--dry-run", action="store_true", help="Fake NVML replaying the capture; no GPU, torch or nvidia-smi."
    )
    args = parser.parse_args(argv)
    phase_seconds = args.seconds / len(PHASES)
    settle = min(2.0, phase_seconds / 3)
    env: RealGpu | DryRun = DryRun(phase_seconds) if args.dry_run else RealGpu(phase_seconds)
    result = run(env, args.seconds, args.interval, settle)
    show(result)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(result.__dict__, indent=1, default=str), encoding="utf-8")
        (args.out / "gpu_check.md").write_text(markdown(result), encoding="utf-8")
    compared = [row for row in result.rows if "within" in row]
    return 0 if compared else 1


if __name__ == "__main__":
    sys.exit(main())
