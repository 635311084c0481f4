"""Immutable GPU readings: what one NVML sample saw, in base units.

The sampler thread builds a new :class:`GpuSnapshot` each interval and swaps it in whole;
a scrape reads whichever snapshot is current and renders it. ``None`` means NVML could not
give that reading (not supported on this card, not a MIG device, a slow query switched off)
and the series is left out rather than exported as 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessReading:
    """One compute process on a GPU, as NVML lists it, with its pod when known."""

    pid: int
    used_memory_bytes: int | None
    # Share of the last sampling window the process kept the SMs busy; None when NVML had
    # no per-process sample for it (its "Not Found").
    sm_utilization: float | None
    pod_uid: str = ""
    container_id: str = ""
    # MIG placement; None outside MIG mode.
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class MigReading:
    """One MIG device (a compute instance inside a GPU instance) and its GPU instance's memory."""

    uuid: str
    gpu_instance_id: int
    compute_instance_id: int
    memory_used_bytes: int | None
    memory_total_bytes: int | None


@dataclass(frozen=True)
class GpuReading:
    """One physical GPU. ``index`` is NVML's enumeration index, as the ``gpu`` label shows it."""

    index: int
    uuid: str
    name: str
    utilization: float | None = None
    memory_utilization: float | None = None
    memory_used_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_watts: float | None = None
    temperature_celsius: float | None = None
    sm_clock_hertz: float | None = None
    # Slow queries, carried from the last slow sample.
    energy_joules: float | None = None
    pcie_transmit_bytes_per_second: float | None = None
    pcie_receive_bytes_per_second: float | None = None
    mig_enabled: bool | None = None
    mig: tuple[MigReading, ...] = ()
    processes: tuple[ProcessReading, ...] = ()


@dataclass(frozen=True)
class GpuSnapshot:
    """Everything one sample saw. ``up`` is False when NVML could not be read at all or an
    NVML call failed outright; ``reason`` then says why, and ``gpus`` holds the GPUs that
    were still read whole (none when NVML itself is unavailable)."""

    taken_at: float
    up: bool
    reason: str = ""
    driver_version: str = ""
    gpus: tuple[GpuReading, ...] = ()
