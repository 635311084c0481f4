"""GPU cost per model on the recorded H200 trace: energy and GPU-seconds split among the pods
and models that hold a GPU, summing to what the device measured."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.config import GpuConfig
from exporter.gpu import GpuCollector, GpuSampler, NvmlReader, start_gpu_collector
from exporter.gpu.attribution import PodAttributor
from exporter.gpu.energy import (
    EnergyLedger,
    ModelRef,
    PodProcesses,
    WholeDevices,
    holder_shares,
    mig_share,
    split_among,
)
from exporter.gpu.fake import Capture, FakeNvml, MigInstance, Tenant
from exporter.gpu.pod_models import SidecarModels
from exporter.gpu.sample import GpuReading, GpuSnapshot, MigReading, ModelGpuUsage, ProcessReading
from exporter.gpu.sampler import PROCESS_WINDOW_SECONDS
from tests.support.gpu import FakeClock, add_injected_sidecar, add_process, scrape

WORKER = 576  # the recorded worker's host pid
TENANT = 9001
POD_A = "0e7c3a52-5b8e-4b6e-9a4c-2f1d3e4a5b6c"
POD_B = "7d1f9e20-3c4b-4a5d-8e6f-9a0b1c2d3e4f"
FRAUD = ModelRef("fraud", "7")
CHURN = ModelRef("churn", "3")
# The tenant replays the worker 31 rows later: while the worker runs its full matmuls, the
# tenant runs the 50 % duty phase; every row from 14 to 109 has both processes on the GPU.
OFFSET = 31
SHARED = range(14, 110)
GB = 10**9


def node_tree(tmp_path: Path, *, inject_b: bool = True) -> Path:
    """A node's /proc: the worker in pod A (serving fraud v7), the tenant in pod B (churn v3),
    each pod with its injected sidecar (pod B's only when ``inject_b``)."""
    proc = tmp_path / "proc"
    add_process(proc, WORKER, POD_A, "a" * 64, ["python3", "serve.py"])
    add_process(proc, TENANT, POD_B, "b" * 64, ["tritonserver", "--model-repository=/models"])
    add_injected_sidecar(proc, 700, POD_A, FRAUD.model, FRAUD.model_version)
    if inject_b:
        add_injected_sidecar(proc, 701, POD_B, CHURN.model, CHURN.model_version)
    return proc


def node_sampler(fake: FakeNvml, proc: Path, clock: FakeClock, slow_interval: float) -> GpuSampler:
    ledger = EnergyLedger(PodProcesses(SidecarModels(proc, clock=clock)))
    reader = NvmlReader(fake, attribute=PodAttributor(proc))
    return GpuSampler(reader, interval_seconds=0.25, slow_interval_seconds=slow_interval, clock=clock, ledger=ledger)


def replay(fake: FakeNvml, sampler: GpuSampler, clock: FakeClock, rows: range) -> list[GpuSnapshot]:
    """One sample per recorded row, at the row's own time."""
    out = []
    for index in rows:
        fake.seek(index)
        clock.now = fake.capture.rows[index].t
        out.append(sampler.sample_once())
    return out


def usage(snapshot: GpuSnapshot) -> dict[ModelRef, ModelGpuUsage]:
    return {ModelRef(u.model, u.model_version): u for u in snapshot.models}


def energy(snapshot: GpuSnapshot, model: ModelRef) -> float:
    value = usage(snapshot)[model].energy_joules
    assert value is not None
    return value


def smutil(capture: Capture, index: int, *, offset: int = 0, first: int = SHARED[0]) -> float:
    """What the reader averages for a process at row ``index`` of a replay that started at row
    ``first``, straight from the trace: the mean SM share of the samples received over the last
    second (``sampler.PROCESS_WINDOW_SECONDS``), the process replaying the worker ``offset``
    rows later. 0 when it had none."""
    rows = capture.rows
    shares = [
        sample["smUtil"] / 100
        for j in range(first, index + 1)
        if rows[j].t > rows[index].t - PROCESS_WINDOW_SECONDS
        for sample in rows[(j + offset) % len(rows)].proc_util or ()
    ]
    return sum(shares) / len(shares) if shares else 0.0


# ---------------------------------------------------------------------------------------------
# The proof: two pods sharing one GPU.


def test_two_pods_get_each_interval_in_proportion_to_their_utilization_samples(
    capture: Capture, tmp_path: Path
) -> None:
    """The counter read every sample: each interval's energy increase splits exactly as the
    two processes' recorded per-process SM samples (their mean over the last second, which is
    what the reader keeps), and the two shares add up to it."""
    fake = FakeNvml(capture, tenants=[Tenant(TENANT, OFFSET)])
    clock = FakeClock()
    snapshots = replay(fake, node_sampler(fake, node_tree(tmp_path), clock, slow_interval=0.01), clock, SHARED)
    checked = 0
    # The first sample only sets the baseline; from the second on, every interval is split.
    for before, after, index in zip(snapshots[1:], snapshots[2:], SHARED[2:]):
        device = (capture.rows[index].energy_mj - capture.rows[index - 1].energy_mj) / 1000
        a = energy(after, FRAUD) - energy(before, FRAUD)
        b = energy(after, CHURN) - energy(before, CHURN)
        assert a + b == pytest.approx(device, rel=1e-9)
        u_a, u_b = smutil(capture, index), smutil(capture, index, offset=OFFSET)
        assert u_a + u_b > 0  # the window has no row where both idle
        assert a == pytest.approx(device * u_a / (u_a + u_b), rel=1e-9, abs=1e-9)
        checked += 1
    assert checked == len(SHARED) - 2
    # Both loads varied: the split is not a constant.
    shares = {
        round(smutil(capture, i) / (smutil(capture, i) + smutil(capture, i, offset=OFFSET)), 2) for i in SHARED[2:]
    }
    assert len(shares) > 10


def test_two_pods_sharing_one_gpu_sum_to_the_devices_energy_within_one_percent(
    capture: Capture, tmp_path: Path
) -> None:
    """At the default cadence (counter every 15 s of trace, a sample per row): the two models'
    energy sums to the device counter's increase, and each model's part is its utilization share
    weighted by the recorded power, as scraped from /metrics."""
    fake = FakeNvml(capture, tenants=[Tenant(TENANT, OFFSET)])
    clock = FakeClock()
    sampler = node_sampler(fake, node_tree(tmp_path), clock, slow_interval=15.0)
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, clock=clock))
    # Start on the first shared row, and end on a row that reads the counter (the run's first
    # read is at SHARED[0], then one per 15 s: the shared window holds one such read).
    snapshots = replay(fake, sampler, clock, SHARED)
    reads = [s for s in snapshots if s.gpus[0].energy_sampled_at == s.taken_at]
    assert len(reads) == 2, "the window holds the first read and one more"
    first, last = reads
    samples = scrape(registry)
    models = {
        dict(labels)["model"]: value for labels, value in samples["model_health_model_gpu_energy_joules_total"].items()
    }
    device = last.gpus[0].energy_joules - first.gpus[0].energy_joules
    read_row = next(i for i in SHARED if capture.rows[i].t == last.taken_at)
    assert device == pytest.approx((capture.rows[read_row].energy_mj - capture.rows[SHARED[0]].energy_mj) / 1000)
    assert sum(models.values()) == pytest.approx(device, rel=0.01)
    assert abs(sum(models.values()) - device) / device < 1e-9  # in fact exact: the counter is split whole
    # Each model's part: power × time × its share of the two processes' SM samples, over the rows
    # up to that read (computed here from the trace rows alone).
    weights_a = weights = 0.0
    for index in SHARED[1:]:
        row, previous = capture.rows[index], capture.rows[index - 1]
        if row.t > last.taken_at:
            break
        joules = (row.power_mw + previous.power_mw) / 2000 * (row.t - previous.t)
        u_a, u_b = smutil(capture, index), smutil(capture, index, offset=OFFSET)
        weights_a += joules * u_a / (u_a + u_b)
        weights += joules
    assert models["fraud"] / device == pytest.approx(weights_a / weights, rel=0.01)
    seconds = {dict(k)["model"]: v for k, v in samples["model_health_model_gpu_seconds_total"].items()}
    elapsed = snapshots[-1].taken_at - snapshots[0].taken_at
    assert seconds["fraud"] + seconds["churn"] == pytest.approx(elapsed)
    assert {dict(k)["gpu_uuid"] for k in samples["model_health_model_gpu_seconds_total"]} == {fake.uuid_of(0)}


def test_a_pod_alone_on_a_gpu_holds_all_of_it_idle_time_included(capture: Capture, tmp_path: Path) -> None:
    fake = FakeNvml(capture)  # the recorded worker alone
    clock = FakeClock()
    rows = range(14, 141)  # from the worker's first appearance to the end, idle stretches included
    snapshots = replay(fake, node_sampler(fake, node_tree(tmp_path), clock, slow_interval=0.01), clock, rows)
    device = (capture.rows[140].energy_mj - capture.rows[14].energy_mj) / 1000
    assert energy(snapshots[-1], FRAUD) == pytest.approx(device, rel=1e-9)
    assert usage(snapshots[-1])[FRAUD].gpu_seconds == pytest.approx(capture.rows[140].t - capture.rows[14].t)
    assert CHURN not in usage(snapshots[-1])


def test_a_gpu_without_processes_is_nobodys_in_the_node_agent(capture: Capture, tmp_path: Path) -> None:
    fake = FakeNvml(capture)
    clock = FakeClock()
    snapshots = replay(fake, node_sampler(fake, node_tree(tmp_path), clock, 0.01), clock, range(0, 14))
    assert snapshots[-1].gpus[0].processes == ()
    assert snapshots[-1].models == ()


def test_a_pod_without_a_sidecar_keeps_its_share_unattributed(capture: Capture, tmp_path: Path) -> None:
    fake = FakeNvml(capture, tenants=[Tenant(TENANT, OFFSET)])
    clock = FakeClock()
    sampler = node_sampler(fake, node_tree(tmp_path, inject_b=False), clock, slow_interval=0.01)
    snapshots = replay(fake, sampler, clock, SHARED)
    assert set(usage(snapshots[-1])) == {FRAUD}
    device = (capture.rows[SHARED[-1]].energy_mj - capture.rows[SHARED[0]].energy_mj) / 1000
    # Pod B ran the whole time: pod A holds only part of the GPU, not all of it.
    assert 0.3 * device < energy(snapshots[-1], FRAUD) < 0.9 * device


def test_the_sidecar_holds_its_pods_gpus_whole(capture: Capture) -> None:
    """Sidecar mode through the real entry point: the model in the sidecar's config gets every
    joule of the device and every second, idle ones too."""
    fake = FakeNvml(capture)
    clock = FakeClock()
    registry = CollectorRegistry()
    config = GpuConfig(mode="sidecar", interval_seconds=0.25, slow_interval_seconds=0.25)
    runtime = start_gpu_collector(config, registry, nvml=fake, clock=clock, model=FRAUD)
    runtime.sampler.stop()  # drive it by hand
    assert runtime.sampler is not None
    for index in range(0, 141):
        fake.seek(index)
        clock.now = capture.rows[index].t
        runtime.sampler.sample_once()
    samples = scrape(registry)
    labels = (("gpu_uuid", fake.uuid_of(0)), ("model", "fraud"), ("model_version", "7"))
    device = (capture.rows[140].energy_mj - capture.rows[0].energy_mj) / 1000
    assert samples["model_health_model_gpu_energy_joules_total"][labels] == pytest.approx(device, rel=1e-9)
    assert samples["model_health_model_gpu_seconds_total"][labels] == pytest.approx(
        capture.rows[140].t - capture.rows[0].t
    )
    runtime.stop()


def test_the_node_agent_entry_point_names_models_from_sidecars(capture: Capture, tmp_path: Path) -> None:
    fake = FakeNvml(capture, tenants=[Tenant(TENANT, OFFSET)])
    clock = FakeClock()
    registry = CollectorRegistry()
    config = GpuConfig(mode="node", interval_seconds=0.25, slow_interval_seconds=15)
    runtime = start_gpu_collector(config, registry, nvml=fake, clock=clock, proc_root=node_tree(tmp_path))
    assert runtime.sampler is not None
    runtime.sampler.stop()
    for index in SHARED:
        fake.seek(index)
        clock.now = capture.rows[index].t
        runtime.sampler.sample_once()
    models = {dict(k)["model"] for k in scrape(registry)["model_health_model_gpu_seconds_total"]}
    assert models == {"fraud", "churn"}
    runtime.stop()


# ---------------------------------------------------------------------------------------------
# Without the counter, and when it goes back.


def test_without_the_energy_counter_power_times_time_is_the_energy(capture: Capture) -> None:
    fake = FakeNvml(capture)
    clock = FakeClock()
    reader = NvmlReader(fake, slow_queries=False)
    sampler = GpuSampler(
        reader, interval_seconds=0.25, slow_interval_seconds=15, clock=clock, ledger=EnergyLedger(WholeDevices(FRAUD))
    )
    snapshots = replay(fake, sampler, clock, range(31, 62))
    assert snapshots[-1].gpus[0].energy_joules is None
    expected = sum(
        (capture.rows[i].power_mw + capture.rows[i - 1].power_mw) / 2000 * (capture.rows[i].t - capture.rows[i - 1].t)
        for i in range(32, 62)
    )
    assert energy(snapshots[-1], FRAUD) == pytest.approx(expected, rel=1e-9)
    # And it is close to what the counter says (the recorded power tracks the counter).
    counter = (capture.rows[61].energy_mj - capture.rows[31].energy_mj) / 1000
    assert energy(snapshots[-1], FRAUD) == pytest.approx(counter, rel=0.05)


def _reading(energy_joules: float | None, at: float, power: float = 100.0) -> GpuReading:
    return GpuReading(index=0, uuid="GPU-x", name="H200", power_watts=power, energy_joules=energy_joules,
                      energy_sampled_at=at if energy_joules is not None else None)  # fmt: skip


def test_a_counter_that_goes_back_drops_that_stretch_only() -> None:
    ledger = EnergyLedger(WholeDevices(FRAUD))
    for at, joules in ((0.0, 1000.0), (1.0, 1100.0), (2.0, 5.0), (3.0, 105.0)):
        totals = ledger.observe(GpuSnapshot(taken_at=at, up=True, gpus=(_reading(joules, at),)))
    assert totals[0].energy_joules == pytest.approx(200.0)  # 100 + (reset: nothing) + 100
    assert totals[0].gpu_seconds == pytest.approx(3.0)


def test_energy_is_absent_until_a_counter_increase_is_split() -> None:
    ledger = EnergyLedger(WholeDevices(FRAUD))
    totals = ledger.observe(GpuSnapshot(taken_at=0.0, up=True, gpus=(_reading(1000.0, 0.0),)))
    assert totals == ()
    totals = ledger.observe(GpuSnapshot(taken_at=1.0, up=True, gpus=(_reading(1000.0, 0.0),)))
    assert totals[0].energy_joules is None and totals[0].gpu_seconds == 1.0  # same reading: not split yet


# ---------------------------------------------------------------------------------------------
# Shares: the rules, on readings built by hand.


def _process(pid: int, pod: str, busy: float | None, memory: int = 0) -> ProcessReading:
    return ProcessReading(pid=pid, used_memory_bytes=memory, sm_utilization=busy, pod_uid=pod, sm_utilization_mean=busy)


def test_shares_by_busy_share_then_memory_then_evenly() -> None:
    pod = lambda p: p.pod_uid  # noqa: E731
    busy = [_process(1, "a", 0.6, 1), _process(2, "a", 0.2, 1), _process(3, "b", 0.2, 8)]
    assert split_among(busy, pod) == pytest.approx({"a": 0.8, "b": 0.2})
    idle = [_process(1, "a", 0.0, 1 * GB), _process(3, "b", None, 3 * GB)]
    assert split_among(idle, pod) == pytest.approx({"a": 0.25, "b": 0.75})
    assert split_among([_process(1, "a", None), _process(3, "b", None)], pod) == {"a": 0.5, "b": 0.5}
    assert split_among([_process(1, "a", 0.0)], pod) == {"a": 1.0}
    assert split_among([], pod) == {}


def test_processes_outside_pods_are_holders_of_their_own() -> None:
    gpu = GpuReading(index=0, uuid="GPU-x", name="H200", processes=(_process(1, POD_A, 0.5), _process(2, "", 0.5)))
    assert holder_shares(gpu, lambda p: p.pod_uid or f"pid:{p.pid}") == {POD_A: 0.5, "pid:2": 0.5}
    models = PodProcesses(lambda pod: FRAUD if pod == POD_A else None)
    assert models.shares(gpu) == {FRAUD: 0.5}


def test_mig_device_share_is_the_mean_of_its_compute_and_memory_shares() -> None:
    board = 140 * GB
    one = MigReading("MIG-1", 1, 0, 0, 20 * GB, gpu_instance_slices=1, compute_instance_slices=1)
    gpu = GpuReading(index=0, uuid="GPU-x", name="H200", memory_total_bytes=board, mig_enabled=True, mig_slices=7)
    assert mig_share(replace(gpu, mig=(one,)), one) == pytest.approx((1 / 7 + 20 / 140) / 2)
    # Two compute instances of one 4-slice GPU instance with 70 GB: each 2 slices, half the memory.
    left = MigReading("MIG-2", 2, 0, 0, 70 * GB, gpu_instance_slices=4, compute_instance_slices=2)
    right = MigReading("MIG-3", 2, 1, 0, 70 * GB, gpu_instance_slices=4, compute_instance_slices=2)
    both = replace(gpu, mig=(left, right))
    assert mig_share(both, left) == pytest.approx((2 / 7 + 35 / 140) / 2)
    # Without slice counts: memory alone, a GPU instance's memory split among its compute instances.
    bare = replace(
        both, mig=(replace(left, compute_instance_slices=None), replace(right, compute_instance_slices=None))
    )
    assert mig_share(bare, bare.mig[0]) == pytest.approx(35 / 140)


MIG_LAYOUT = (
    MigInstance(1, 0, 35 * GB, 10 * GB, processes=((1001, 9 * GB),), gpu_instance_slices=2, compute_instance_slices=2),
    MigInstance(2, 0, 71 * GB, 20 * GB, processes=((1002, 19 * GB),), gpu_instance_slices=3, compute_instance_slices=3),
    MigInstance(3, 0, 17 * GB),  # a 1-slice instance nobody runs on
)


def test_mig_instances_split_the_board_by_their_compute_and_memory(capture: Capture, tmp_path: Path) -> None:
    fake = FakeNvml(capture, mig=MIG_LAYOUT)
    proc = tmp_path / "proc"
    add_process(proc, 1001, POD_A, "a" * 64, ["python3", "serve.py"])
    add_process(proc, 1002, POD_B, "b" * 64, ["python3", "serve.py"])
    add_injected_sidecar(proc, 700, POD_A, FRAUD.model, FRAUD.model_version)
    add_injected_sidecar(proc, 701, POD_B, CHURN.model, CHURN.model_version)
    clock = FakeClock()
    snapshots = replay(fake, node_sampler(fake, proc, clock, slow_interval=0.01), clock, range(31, 62))
    board = capture.rows[31].mem_total
    expected = {
        FRAUD: (2 / 7 + 35 * GB / board) / 2,
        CHURN: (3 / 7 + 71 * GB / board) / 2,
    }
    device = (capture.rows[61].energy_mj - capture.rows[31].energy_mj) / 1000
    elapsed = capture.rows[61].t - capture.rows[31].t
    for model, share in expected.items():
        assert energy(snapshots[-1], model) == pytest.approx(share * device, rel=1e-9)
        assert usage(snapshots[-1])[model].gpu_seconds == pytest.approx(share * elapsed)
    # The idle 1-slice instance and memory outside every instance stay unattributed.
    assert sum(expected.values()) < 1


def test_a_sidecar_on_mig_holds_the_mig_devices_it_sees(capture: Capture) -> None:
    fake = FakeNvml(capture, mig=MIG_LAYOUT[:1])  # the container was given one MIG device
    clock = FakeClock()
    sampler = GpuSampler(
        NvmlReader(fake), interval_seconds=0.25, slow_interval_seconds=0.01, clock=clock,
        ledger=EnergyLedger(WholeDevices(FRAUD)),
    )  # fmt: skip
    snapshots = replay(fake, sampler, clock, range(31, 41))
    device = (capture.rows[40].energy_mj - capture.rows[31].energy_mj) / 1000
    share = (2 / 7 + 35 * GB / capture.rows[31].mem_total) / 2
    assert energy(snapshots[-1], FRAUD) == pytest.approx(share * device, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Rendering and robustness.


def test_model_series_are_withheld_while_samples_are_stale(capture: Capture) -> None:
    fake = FakeNvml(capture)
    clock = FakeClock()
    sampler = GpuSampler(
        NvmlReader(fake), interval_seconds=1, slow_interval_seconds=1, clock=clock,
        ledger=EnergyLedger(WholeDevices(FRAUD)),
    )  # fmt: skip
    registry = CollectorRegistry()
    registry.register(GpuCollector(lambda: sampler.latest, stale_after_seconds=30, clock=clock))
    replay(fake, sampler, clock, range(30, 40))
    assert "model_health_model_gpu_energy_joules_total" in scrape(registry)
    clock.advance(60)
    assert "model_health_model_gpu_energy_joules_total" not in scrape(registry)


def test_a_failing_ledger_keeps_the_readings_and_the_last_totals(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeNvml(capture)
    clock = FakeClock()
    ledger = EnergyLedger(WholeDevices(FRAUD))
    sampler = GpuSampler(NvmlReader(fake), interval_seconds=1, slow_interval_seconds=1, clock=clock, ledger=ledger)
    before = replay(fake, sampler, clock, range(30, 35))[-1].models

    def broken(snapshot: GpuSnapshot) -> tuple[ModelGpuUsage, ...]:
        raise RuntimeError("bug")

    ledger.observe = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        after = replay(fake, sampler, clock, range(35, 36))[-1]
    assert after.up and after.gpus and after.models == before
    assert "attribution failed" in caplog.text
