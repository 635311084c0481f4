"""GPU metrics from NVML: a background sampler and a Prometheus collector over its snapshots.

The one entry point, shared by the sidecar and the node agent::

    runtime = start_gpu_collector(config.gpu, registry)   # starts sampling, registers the collector
    ...
    runtime.stop()                                         # stops the thread, unregisters, nvmlShutdown

Modes (``gpu.mode``):

- ``sidecar`` — the GPUs NVML shows inside the model's pod: the container runtime exposes only
  the devices the NVIDIA device plugin allocated (``NVIDIA_VISIBLE_DEVICES``; CUDA's
  ``CUDA_VISIBLE_DEVICES`` does not limit NVML). Processes are exported without pod labels:
  NVML names host PIDs, which mean nothing in the pod's PID namespace, and the scrape target
  already identifies the pod.
- ``node`` — every GPU of the node (the ``model-health node`` DaemonSet), with each compute
  process attributed to its ``pod_uid`` and ``container_id`` through
  ``<proc_root>/<pid>/cgroup`` (needs ``hostPID: true`` or the host's ``/proc`` as
  ``proc_root``).
- ``off`` — nothing is sampled and nothing is registered: no GPU series at all, not even
  ``model_health_gpu_collector_up``. The runtime's ``collector`` is None and ``stop()`` does
  nothing.

The ``gpu`` label is NVML's device index *as this process sees it* (in sidecar mode, the
index among the pod's GPUs); ``gpu_uuid`` is the stable identity to join on. ``nvml`` is any
object with pynvml's call names: None for the real library, or ``exporter.gpu.fake.FakeNvml``.

What each model costs on the GPU — ``model_health_model_gpu_energy_joules_total`` and
``model_health_model_gpu_seconds_total`` — comes from an energy ledger the sampler feeds after
every read (``energy``): in mode ``sidecar`` the pod's GPUs are wholly its model's (``model=``),
in mode ``node`` each GPU is split among the pods of its processes and each pod named by its
model-health sidecar's config (``pod_models``). ``ownership=`` overrides either.

Modules, in the order a sample meets them: ``nvml`` (the one door to pynvml), ``fake`` (the
recorded H200 instead), ``attribution`` (process → pod), ``sampler`` (NVML → ``sample``'s
immutable snapshot), ``energy`` (snapshot → joules and GPU-seconds per model), ``pod_models``
(pod → model, for the node agent), ``collector`` (snapshot → scrape), ``node`` (the node agent).

This package needs only ``pynvml`` and ``prometheus_client`` at run time (``config`` is any
object with GpuConfig's fields; the node agent's pod → model lookup also reads YAML), so
``benchmarks/gpu_check.py`` runs it where the rest of the project is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from exporter.gpu.attribution import PodAttributor, PodRef
from exporter.gpu.collector import GpuCollector, stale_after
from exporter.gpu.energy import EnergyLedger, ModelRef, Ownership, PodProcesses, WholeDevices
from exporter.gpu.pod_models import SidecarModels
from exporter.gpu.sample import GpuReading, GpuSnapshot, MigReading, ModelGpuUsage, ProcessReading
from exporter.gpu.sampler import GpuSampler, NvmlReader

if TYPE_CHECKING:
    from exporter.config import GpuConfig


@dataclass
class GpuRuntime:
    """A running GPU collector: its sampler thread and the collector in the registry."""

    collector: GpuCollector | None
    sampler: GpuSampler | None
    registry: CollectorRegistry | None = None
    mode: str = "off"

    def snapshot(self) -> GpuSnapshot | None:
        """The newest sample, or None before the first (and always in mode ``off``)."""
        return self.sampler.latest if self.sampler is not None else None

    def wait_for_sample(self, timeout: float | None = None) -> bool:
        """Block until the first sample is taken; True at once in mode ``off``."""
        return True if self.sampler is None else self.sampler.wait_for_sample(timeout)

    def ready(self) -> tuple[bool, str]:
        """For /readyz: ready once a sample exists; the text says whether NVML answered."""
        if self.sampler is None:
            return True, "gpu: off"
        snapshot = self.sampler.latest
        if snapshot is None:
            return False, "gpu: no sample yet"
        if snapshot.up:
            return True, f"gpu: {len(snapshot.gpus)} GPU(s), driver {snapshot.driver_version}"
        return True, f"gpu: NVML unavailable ({snapshot.reason})"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling (NVML is shut down by the sampler thread) and unregister; idempotent."""
        if self.sampler is not None:
            self.sampler.stop(timeout)
        if self.registry is not None and self.collector is not None:
            try:
                self.registry.unregister(self.collector)
            except KeyError:
                pass  # already unregistered
            self.registry = None


def start_gpu_collector(
    config: GpuConfig,
    registry: CollectorRegistry,
    *,
    nvml: object | None = None,
    proc_root: Path = Path("/proc"),
    clock: Callable[[], float] = time.time,
    model: ModelRef | None = None,
    ownership: Ownership | None = None,
) -> GpuRuntime:
    """Start sampling NVML per ``config`` and register the GPU collector in ``registry``.

    Never raises for a missing driver or GPU: the sampler reports it as
    ``model_health_gpu_collector_up 0`` and logs the reason once.

    GPU cost per model: ``ownership`` when given; else in mode ``sidecar`` the whole of every
    GPU it sees goes to ``model`` (none without one), and in mode ``node`` each GPU is split
    among its processes' pods, named by their sidecars found under ``proc_root``.
    """
    mode = str(config.mode)
    if mode == "off":
        return GpuRuntime(collector=None, sampler=None, mode=mode)
    if nvml is None:
        from exporter.gpu.nvml import real_nvml

        nvml = real_nvml()
    attribute: Callable[[int], PodRef] | None = PodAttributor(proc_root) if mode == "node" else None
    reader = NvmlReader(nvml, attribute=attribute, slow_queries=bool(getattr(config, "slow_queries", True)))
    if ownership is None:
        if mode == "node":
            ownership = PodProcesses(SidecarModels(proc_root))
        elif model is not None:
            ownership = WholeDevices(model)
    sampler = GpuSampler(
        reader,
        interval_seconds=float(config.interval_seconds),
        slow_interval_seconds=float(config.slow_interval_seconds),
        clock=clock,
        ledger=EnergyLedger(ownership) if ownership is not None else None,
    )
    collector = GpuCollector(
        lambda: sampler.latest, stale_after_seconds=stale_after(float(config.interval_seconds)), clock=clock
    )
    registry.register(collector)
    sampler.start()
    return GpuRuntime(collector=collector, sampler=sampler, registry=registry, mode=mode)


__all__ = [
    "EnergyLedger",
    "GpuCollector",
    "GpuReading",
    "GpuRuntime",
    "GpuSampler",
    "GpuSnapshot",
    "MigReading",
    "ModelGpuUsage",
    "ModelRef",
    "NvmlReader",
    "Ownership",
    "PodProcesses",
    "PodAttributor",
    "PodRef",
    "ProcessReading",
    "SidecarModels",
    "WholeDevices",
    "start_gpu_collector",
]
