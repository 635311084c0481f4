"""Prometheus collector for the GPU metrics: renders the sampler's last snapshot at scrape time.

Families come from the metric catalogue (every ``model_health_gpu_*`` entry); values from
one immutable :class:`~exporter.gpu.sample.GpuSnapshot`. A scrape reads a reference and
formats numbers: it never calls NVML and never waits on the sampler.

``model_health_gpu_collector_up`` is 1 when the last sample read NVML without error and is
recent. It is 0 when NVML is unavailable (no driver, no GPU, an NVML error) — the GPUs that
were still read whole are exported beside it — and also when the last sample is older than
``stale_after_seconds``: an NVML call that hangs (a GPU falling off the bus can do that)
stops the sampler, and frozen values would look like a healthy, idle GPU. Stale GPU series
are left out. Before the first sample nothing at all is exported.

``model_health_model_gpu_energy_joules_total`` and ``…_seconds_total`` render the running
totals the sampler's energy ledger put in the snapshot (``exporter.gpu.energy``); they are
counters since this process started and, like the GPU series, withheld while samples are stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from exporter.exposition import CatalogueCollector, Families
from exporter.gpu.sample import GpuReading, GpuSnapshot

log = logging.getLogger(__name__)

# Every family this collector can expose (scrapes list them in catalogue order).
GPU_METRICS: tuple[str, ...] = (
    "model_health_gpu_collector_up",
    "model_health_gpu_info",
    "model_health_gpu_utilization_ratio",
    "model_health_gpu_memory_utilization_ratio",
    "model_health_gpu_memory_used_bytes",
    "model_health_gpu_memory_reserved_bytes",
    "model_health_gpu_memory_total_bytes",
    "model_health_gpu_power_watts",
    "model_health_gpu_energy_joules_total",
    "model_health_gpu_temperature_celsius",
    "model_health_gpu_sm_clock_hertz",
    "model_health_gpu_pcie_transmit_bytes_per_second",
    "model_health_gpu_pcie_receive_bytes_per_second",
    "model_health_gpu_mig_enabled",
    "model_health_gpu_mig_memory_used_bytes",
    "model_health_gpu_mig_memory_total_bytes",
    "model_health_gpu_process_memory_used_bytes",
    "model_health_gpu_process_utilization_ratio",
    "model_health_model_gpu_energy_joules_total",
    "model_health_model_gpu_seconds_total",
)

# GpuReading attribute → the per-GPU gauge or counter that exports it.
_PER_GPU: tuple[tuple[str, str], ...] = (
    ("utilization", "model_health_gpu_utilization_ratio"),
    ("memory_utilization", "model_health_gpu_memory_utilization_ratio"),
    ("memory_used_bytes", "model_health_gpu_memory_used_bytes"),
    ("memory_reserved_bytes", "model_health_gpu_memory_reserved_bytes"),
    ("memory_total_bytes", "model_health_gpu_memory_total_bytes"),
    ("power_watts", "model_health_gpu_power_watts"),
    ("energy_joules", "model_health_gpu_energy_joules_total"),
    ("temperature_celsius", "model_health_gpu_temperature_celsius"),
    ("sm_clock_hertz", "model_health_gpu_sm_clock_hertz"),
    ("pcie_transmit_bytes_per_second", "model_health_gpu_pcie_transmit_bytes_per_second"),
    ("pcie_receive_bytes_per_second", "model_health_gpu_pcie_receive_bytes_per_second"),
)


def stale_after(interval_seconds: float) -> float:
    """How old a sample may get before it counts as stuck: 5 intervals, at least 30 s."""
    return max(30.0, 5.0 * interval_seconds)


class GpuCollector(CatalogueCollector):
    """Yields the GPU families from ``current()``, the sampler's newest snapshot (or None).

    Families without samples are left out: a scrape lists what there is, HELP for nothing is noise.
    """

    METRICS = GPU_METRICS

    def __init__(
        self,
        current: Callable[[], GpuSnapshot | None],
        *,
        stale_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._current = current
        self._stale_after = stale_after_seconds
        self._clock = clock
        self._stale_logged = False

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        if snapshot is None:
            return
        out = self.families()
        age = self._clock() - snapshot.taken_at
        fresh = age <= self._stale_after
        self._note_staleness(fresh, age)
        out.add("model_health_gpu_collector_up", [], snapshot.up and fresh)
        if fresh:
            for gpu in snapshot.gpus:
                _render_gpu(out, gpu, snapshot.driver_version)
            for usage in snapshot.models:
                labels = [usage.model, usage.model_version, usage.gpu_uuid]
                out.add("model_health_model_gpu_energy_joules_total", labels, usage.energy_joules)
                out.add("model_health_model_gpu_seconds_total", labels, usage.gpu_seconds)
        yield from out

    def _note_staleness(self, fresh: bool, age: float) -> None:
        # Logged from the scrape because the sampler, stuck inside NVML, cannot log it.
        if not fresh and not self._stale_logged:
            log.warning("last GPU sample is %.0fs old: an NVML call is hanging; GPU series withheld", age)
        elif fresh and self._stale_logged:
            log.info("GPU samples are current again")
        self._stale_logged = not fresh


def _render_gpu(out: Families, gpu: GpuReading, driver_version: str) -> None:
    labels = [str(gpu.index), gpu.uuid]
    out.add("model_health_gpu_info", [*labels, gpu.name, driver_version], 1)
    for attribute, name in _PER_GPU:
        out.add(name, labels, getattr(gpu, attribute))
    out.add("model_health_gpu_mig_enabled", labels, gpu.mig_enabled)
    for mig in gpu.mig:
        mig_labels = [*labels, mig.uuid, str(mig.gpu_instance_id), str(mig.compute_instance_id)]
        out.add("model_health_gpu_mig_memory_used_bytes", mig_labels, mig.memory_used_bytes)
        out.add("model_health_gpu_mig_memory_total_bytes", mig_labels, mig.memory_total_bytes)
    for process in gpu.processes:
        process_labels = [gpu.uuid, str(process.pid), process.pod_uid, process.container_id]
        out.add("model_health_gpu_process_memory_used_bytes", process_labels, process.used_memory_bytes)
        out.add("model_health_gpu_process_utilization_ratio", process_labels, process.sm_utilization)
