"""What each model's predictions cost on the GPU: its share of every GPU, sample by sample, and
the ledger that turns shares into joules and GPU-seconds.

**Shares.** Each sample gives every GPU's owners a share of the board (shares sum to at most 1;
what no model holds stays unattributed and shows as the device's energy minus the models'):

- A GPU held by one pod alone — in the sidecar (:class:`WholeDevices`: the device plugin gave
  the pod the GPUs NVML shows it), or in the node agent when every process on it is one pod's
  — is that pod's whole, idle time included: nobody else could use it.
- A GPU several pods run processes on (time-slicing, MPS) is split by their processes' SM busy
  share, the mean of NVML's per-process samples since the previous read, summed per pod. When
  none of them ran anything in the interval, by the memory their processes hold; failing that,
  evenly.
- A MIG-enabled GPU is split by MIG device first: each gets the mean of its compute share (its
  compute instance's slices of the GPU's slices) and its memory share (its GPU instance's
  memory, divided among that instance's compute instances by slices, of the board's memory).
  Slices and memory no instance holds stay unattributed. Several pods on one MIG device share
  it by memory (NVML reports no per-process utilization on MIG).
- In the node agent a GPU with no compute process at all is nobody's.

A pod's share goes to the model it serves (:class:`PodProcesses`, with
``exporter.gpu.pod_models.SidecarModels`` naming each pod's model); a pod serving no known
model keeps its share unattributed.

**Joules and seconds.** Per GPU and interval ``dt`` between two samples, a model gets ``share ×
dt`` GPU-seconds and, as a first estimate, ``share × power × dt`` joules (power: the mean of the
two samples' readings). When a fresh reading of the device's total-energy counter arrives (every
slow interval), the counter's increase since the previous reading is split in proportion to
those estimates, so the models' energy sums to exactly what the device measured, less the
unattributed part. Without the counter (``slow_queries: false``, or a card without it) the
power estimate is the energy; without power either, only GPU-seconds are kept. A counter that
goes back (driver reloaded) drops that one stretch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from exporter.gpu.sample import GpuReading, GpuSnapshot, MigReading, ModelGpuUsage, ProcessReading


@dataclass(frozen=True, order=True)
class ModelRef:
    """A model version, as the ``model`` and ``model_version`` labels carry it."""

    model: str
    model_version: str


class Ownership(Protocol):
    """Who holds how much of one GPU in one sample: model → share of the board (sum ≤ 1)."""

    def shares(self, gpu: GpuReading) -> dict[ModelRef, float]: ...


# ---------------------------------------------------------------------------------------------
# Shares.


def mig_share(gpu: GpuReading, mig: MigReading) -> float:
    """One MIG device's share of its board: the mean of its compute and memory shares."""
    compute = None
    if mig.compute_instance_slices and gpu.mig_slices:
        compute = mig.compute_instance_slices / gpu.mig_slices
    memory = None
    if mig.memory_total_bytes and gpu.memory_total_bytes:
        # Compute instances of one GPU instance share its memory (and show the same total).
        if mig.compute_instance_slices and mig.gpu_instance_slices:
            part = mig.compute_instance_slices / mig.gpu_instance_slices
        else:
            part = 1 / sum(1 for other in gpu.mig if other.gpu_instance_id == mig.gpu_instance_id)
        memory = mig.memory_total_bytes * part / gpu.memory_total_bytes
    known = [share for share in (compute, memory) if share is not None]
    if not known:
        return 1 / len(gpu.mig)  # nothing to go by: the MIG devices share the board evenly
    return min(1.0, sum(known) / len(known))


def split_among(processes: Iterable[ProcessReading], holder_of: Callable[[ProcessReading], str]) -> dict[str, float]:
    """Holder → share of one device held by ``processes`` (sum 1, or {} without processes).

    One holder takes it whole; several split it by SM busy share, else memory, else evenly.
    """
    busy: dict[str, float] = defaultdict(float)
    memory: dict[str, float] = defaultdict(float)
    for process in processes:
        holder = holder_of(process)
        busy[holder] += process.sm_utilization_mean or 0.0
        memory[holder] += process.used_memory_bytes or 0
    holders = list(busy)
    if len(holders) <= 1:
        return {holder: 1.0 for holder in holders}
    for weights in (busy, memory):
        total = sum(weights.values())
        if total > 0:
            return {holder: weights[holder] / total for holder in holders}
    return {holder: 1 / len(holders) for holder in holders}


def holder_shares(gpu: GpuReading, holder_of: Callable[[ProcessReading], str]) -> dict[str, float]:
    """Holder → share of the whole board ``gpu``, MIG devices first where MIG is on."""
    if not gpu.mig_enabled or not gpu.mig:
        return split_among(gpu.processes, holder_of)
    shares: dict[str, float] = defaultdict(float)
    for mig in gpu.mig:
        on_it = [
            process
            for process in gpu.processes
            if (process.gpu_instance_id, process.compute_instance_id) == (mig.gpu_instance_id, mig.compute_instance_id)
        ]
        weight = mig_share(gpu, mig)
        for holder, share in split_among(on_it, holder_of).items():
            shares[holder] += weight * share
    return dict(shares)


def pod_of(process: ProcessReading) -> str:
    """The holder key of a process: its pod, or the process itself outside any pod."""
    return process.pod_uid or f"pid:{process.pid}"


@dataclass(frozen=True)
class WholeDevices:
    """The sidecar: every GPU (and every MIG device) NVML shows the pod is the pod's model's."""

    model: ModelRef

    def shares(self, gpu: GpuReading) -> dict[ModelRef, float]:
        if gpu.mig_enabled:
            # NVML shows a pod only the MIG devices it was given.
            return {self.model: min(1.0, sum(mig_share(gpu, mig) for mig in gpu.mig))} if gpu.mig else {}
        return {self.model: 1.0}


@dataclass
class PodProcesses:
    """The node agent: the holders of a GPU are the pods of its processes, each serving a model."""

    model_of: Callable[[str], ModelRef | None]
    holder_of: Callable[[ProcessReading], str] = pod_of

    def shares(self, gpu: GpuReading) -> dict[ModelRef, float]:
        out: dict[ModelRef, float] = defaultdict(float)
        for holder, share in holder_shares(gpu, self.holder_of).items():
            model = self.model_of(holder)
            if model is not None:
                out[model] += share
        return dict(out)


# ---------------------------------------------------------------------------------------------
# The ledger.


@dataclass
class _Account:
    """One GPU between samples: the last sample's time and power, the last counter reading, and
    the power estimates of the intervals since that reading."""

    last_at: float | None = None
    last_power: float | None = None
    counter_at: float | None = None
    counter_joules: float | None = None
    pending: dict[ModelRef, float] = field(default_factory=lambda: defaultdict(float))
    pending_total: float = 0.0


class EnergyLedger:
    """Running joules and GPU-seconds per (model, GPU); :meth:`observe` is called once per sample."""

    def __init__(self, ownership: Ownership) -> None:
        self._ownership = ownership
        self._accounts: dict[str, _Account] = {}
        self._seconds: dict[tuple[ModelRef, str], float] = defaultdict(float)
        self._joules: dict[tuple[ModelRef, str], float] = defaultdict(float)

    @property
    def ownership(self) -> Ownership:
        return self._ownership

    def observe(self, snapshot: GpuSnapshot) -> tuple[ModelGpuUsage, ...]:
        """Charge the interval since each GPU's previous sample; the running totals after it."""
        for gpu in snapshot.gpus:
            self._charge(gpu, snapshot.taken_at)
        return self.usage()

    def usage(self) -> tuple[ModelGpuUsage, ...]:
        keys = sorted(set(self._seconds) | set(self._joules), key=lambda key: (key[0], key[1]))
        return tuple(
            ModelGpuUsage(
                model=model.model,
                model_version=model.model_version,
                gpu_uuid=uuid,
                gpu_seconds=self._seconds.get((model, uuid), 0.0),
                energy_joules=self._joules.get((model, uuid)),
            )
            for model, uuid in keys
        )

    def _charge(self, gpu: GpuReading, now: float) -> None:
        account = self._accounts.setdefault(gpu.uuid, _Account())
        shares = self._ownership.shares(gpu)
        if account.last_at is not None and now > account.last_at:
            dt = now - account.last_at
            powers = [power for power in (account.last_power, gpu.power_watts) if power is not None]
            power = sum(powers) / len(powers) if powers else None
            for model, share in shares.items():
                self._seconds[(model, gpu.uuid)] += share * dt
            if gpu.energy_joules is None:
                # No counter: the power reading is all there is.
                if power is not None:
                    for model, share in shares.items():
                        self._joules[(model, gpu.uuid)] += share * power * dt
            else:
                weight = power * dt if power is not None else dt
                account.pending_total += weight
                for model, share in shares.items():
                    account.pending[model] += share * weight
        account.last_at, account.last_power = now, gpu.power_watts
        if gpu.energy_sampled_at is not None and gpu.energy_sampled_at != account.counter_at:
            self._settle(account, gpu)

    def _settle(self, account: _Account, gpu: GpuReading) -> None:
        """A fresh counter reading: split its increase in proportion to the pending estimates."""
        assert gpu.energy_joules is not None
        if account.counter_joules is not None and account.pending_total > 0:
            increase = gpu.energy_joules - account.counter_joules
            if increase >= 0:  # a counter that went back was reset (driver reload): drop the stretch
                for model, estimate in account.pending.items():
                    self._joules[(model, gpu.uuid)] += increase * estimate / account.pending_total
        account.counter_joules, account.counter_at = gpu.energy_joules, gpu.energy_sampled_at
        account.pending = defaultdict(float)
        account.pending_total = 0.0


__all__ = [
    "EnergyLedger",
    "ModelRef",
    "Ownership",
    "PodProcesses",
    "WholeDevices",
    "holder_shares",
    "mig_share",
    "pod_of",
    "split_among",
]
