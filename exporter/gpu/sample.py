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
    # Mean SM busy share over every per-process sample NVML returned since the previous read
    # (several per read: NVML samples faster than we read); what energy attribution weighs.
    sm_utilization_mean: float | None = None


@dataclass(frozen=True)
class MigReading:
    """One MIG device (a compute instance inside a GPU instance) and its GPU instance's memory."""

    uuid: str
    gpu_instance_id: int
    compute_instance_id: int
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    # From nvmlDeviceGetAttributes: the slices of the GPU instance and of this compute
    # instance (None where NVML does not say), which make its compute share of the board.
    gpu_instance_slices: int | None = None
    compute_instance_slices: int | None = None


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
    # When ``energy_joules`` was read (it is carried between slow samples): a newer time
    # means a fresh counter value to split among models.
    energy_sampled_at: float | None = None
    pcie_transmit_bytes_per_second: float | None = None
    pcie_receive_bytes_per_second: float | None = None
    mig_enabled: bool | None = None
    # Compute slices a MIG-enabled GPU has (nvmlDeviceGetMaxMigDeviceCount: 7 on an H200).
    mig_slices: int | None = None
    mig: tuple[MigReading, ...] = ()
    processes: tuple[ProcessReading, ...] = ()


@dataclass(frozen=True)
class ModelGpuUsage:
    """Energy and GPU-seconds attributed to one model version on one GPU, since this process started."""

    model: str
    model_version: str
    gpu_uuid: str
    gpu_seconds: float
    # None until a first energy reading could be split (no counter, no power: never).
    energy_joules: float | None


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
    # Running totals per (model, version, GPU), when this process attributes GPUs to models.
    models: tuple[ModelGpuUsage, ...] = ()
