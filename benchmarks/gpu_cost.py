"""What GPU cost attribution adds to each NVML sample, side by side, and what a pod → model scan costs.

    python benchmarks/gpu_cost.py [--samples 2000] [--proc /proc]

1. Sampling, on the fake NVML replaying the recorded H200 (no call costs slept: this times our
   code, not NVML), the worker and one tenant process on the GPU, in node mode with their pods'
   cgroups on a fake /proc: ``GpuSampler.sample_once`` without a ledger and with the energy
   ledger (``PodProcesses`` + ``SidecarModels``), alternating, ``--samples`` each; median µs
   per sample and the ratio.
2. One ``SidecarModels`` scan of a real ``/proc`` (``--proc``): every process's cmdline read
   (and the sidecars' cgroup and config), the cost a node agent pays once per unknown pod and at
   most every 30 s; with the number of processes scanned.

Prints a table; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from exporter.gpu import EnergyLedger, GpuSampler, NvmlReader, PodProcesses, SidecarModels  # noqa: E402
from exporter.gpu.attribution import PodAttributor  # noqa: E402
from exporter.gpu.fake import FakeNvml, Tenant  # noqa: E402
from tests.support.gpu import FakeClock, add_injected_sidecar, add_process  # noqa: E402

POD_A = "0e7c3a52-5b8e-4b6e-9a4c-2f1d3e4a5b6c"
POD_B = "7d1f9e20-3c4b-4a5d-8e6f-9a0b1c2d3e4f"


def fake_node(root: Path) -> Path:
    proc = root / "proc"
    add_process(proc, 576, POD_A, "a" * 64, ["python3", "serve.py"])
    add_process(proc, 9001, POD_B, "b" * 64, ["tritonserver"])
    add_injected_sidecar(proc, 700, POD_A, "fraud", "7")
    add_injected_sidecar(proc, 701, POD_B, "churn", "3")
    return proc


def sampler(proc: Path, with_ledger: bool) -> tuple[GpuSampler, FakeNvml, FakeClock]:
    fake = FakeNvml(tenants=[Tenant(9001, 31)])
    clock = FakeClock()
    ledger = EnergyLedger(PodProcesses(SidecarModels(proc, clock=clock))) if with_ledger else None
    reader = NvmlReader(fake, attribute=PodAttributor(proc))
    return GpuSampler(reader, interval_seconds=1, slow_interval_seconds=15, clock=clock, ledger=ledger), fake, clock


def time_sampling(proc: Path, samples: int) -> dict[str, float]:
    runs = {name: sampler(proc, name == "with ledger") for name in ("without ledger", "with ledger")}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for index in range(samples):
        for name, (sampler_, fake, clock) in runs.items():
            fake.seek(30 + index % 60)  # the shared stretch: both processes on the GPU
            clock.advance(0.25)
            started = time.perf_counter()
            sampler_.sample_once()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def time_scan(proc_root: Path) -> tuple[float, int]:
    models = SidecarModels(proc_root)
    processes = sum(1 for entry in os.scandir(proc_root) if entry.name.isdigit())
    started = time.perf_counter()
    models("00000000-0000-0000-0000-000000000000")  # unknown: scans
    return (time.perf_counter() - started) * 1e3, processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--proc", type=Path, default=Path("/proc"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        sampling = time_sampling(fake_node(Path(root)), args.samples)
    scan_ms, processes = time_scan(args.proc)
    ratio = sampling["with ledger"] / sampling["without ledger"]
    print(f"{'sample_once, median µs':<40}{'':>4}")
    for name, value in sampling.items():
        print(f"  {name:<38}{value:>10.1f}")
    print(f"  {'ratio with / without':<38}{ratio:>10.2f}")
    print(f"SidecarModels scan of {args.proc} ({processes} processes): {scan_ms:.1f} ms")
    if args.json is not None:
        figures = {"sample_us": sampling, "ratio": ratio, "scan_ms": scan_ms, "processes": processes}
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
