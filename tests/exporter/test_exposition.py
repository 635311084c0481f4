"""The one family builder: declared metrics, describe() from the catalogue, duplicate families refused."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.aggregator.collector import SnapshotCollector
from exporter.aggregator.scaleout.service import MergeCollector
from exporter.catalogue import CATALOGUE, by_name, for_owner
from exporter.exposition import BuildInfoCollector, CatalogueCollector, Families
from exporter.gpu.collector import GpuCollector
from exporter.injector.service import AdmissionCounts, InjectorCollector
from exporter.pipeline.snapshot import Snapshot
from exporter.relay.stats import RelayCollector, RelayStats
from exporter.sidecar.serving import ServingStats, SidecarCollector


def never(*args: object) -> object:
    raise AssertionError("registering a collector must not collect")


# What each role registers in its one registry (see each role's service).
ROLES: dict[str, list[CatalogueCollector]] = {
    "aggregator": [BuildInfoCollector("1"), SnapshotCollector(never), MergeCollector(never)],  # type: ignore[arg-type]
    "sidecar": [
        BuildInfoCollector("1"),
        SidecarCollector(ServingStats((0.1,)), never),  # type: ignore[arg-type]
        GpuCollector(never),  # type: ignore[arg-type]
    ],
    "node": [BuildInfoCollector("1"), GpuCollector(never)],  # type: ignore[arg-type]
    "relay": [BuildInfoCollector("1"), RelayCollector(RelayStats("generic"))],
    "injector": [BuildInfoCollector("1"), InjectorCollector(AdmissionCounts(), None)],  # type: ignore[arg-type]
}


@pytest.mark.parametrize("role", list(ROLES))
def test_a_role_registers_its_collectors_without_collecting_and_they_cover_what_it_owns(role):
    registry = CollectorRegistry()
    for collector in ROLES[role]:
        registry.register(collector)  # raises on a family two of them would expose
    declared = [name for collector in ROLES[role] for name in collector.METRICS]
    assert len(declared) == len(set(declared))
    assert set(declared) == {metric.name for metric in for_owner(role)}


def test_registering_a_second_collector_of_a_family_is_refused():
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector("1"))
    with pytest.raises(ValueError, match="Duplicated timeseries.*model_health_build_info"):
        registry.register(BuildInfoCollector("2"))
    # The sidecar's serving collector and the aggregator's both expose predictions_total.
    registry.register(SnapshotCollector(lambda: Snapshot(evaluated_at=0.0)))
    with pytest.raises(ValueError, match="model_health_predictions"):
        registry.register(SidecarCollector(ServingStats((0.1,)), lambda: 0))


def test_describe_is_the_declared_families_in_catalogue_order_and_empty():
    described = MergeCollector(never).describe()  # type: ignore[arg-type]
    assert [family.name for family in described] == [
        by_name(name).family for name in MergeCollector.METRICS
    ]  # counters by family name, as collect() yields them
    assert all(family.samples == [] for family in described)
    order = {metric.name: index for index, metric in enumerate(CATALOGUE)}
    names = [family.name for family in SnapshotCollector(never).describe()]  # type: ignore[arg-type]
    assert len(names) == len(SnapshotCollector.METRICS)
    assert [order.get(n, order.get(f"{n}_total")) for n in names] == sorted(order[n] for n in SnapshotCollector.METRICS)


def test_families_skip_absent_values_yield_in_catalogue_order_and_refuse_the_undeclared():
    out = Families(["model_health_build_info", "model_health_feature_psi", "model_health_window_samples"])
    out.add("model_health_build_info", ["1"], 1)
    out.add("model_health_window_samples", ["m", "1", "1h"], None)
    out.add("model_health_feature_psi", ["m", "1", "f", "1h"], math.nan)
    out.add("model_health_feature_psi", ["m", "1", "g", "1h"], 0.3)
    assert [(f.name, len(f.samples)) for f in out] == [("model_health_feature_psi", 1), ("model_health_build_info", 1)]
    with pytest.raises(KeyError, match="model_health_label_psi"):
        out.add("model_health_label_psi", ["m", "1", "1h"], 0.1)


def test_a_name_outside_the_catalogue_fails_when_the_collector_is_defined():
    with pytest.raises(KeyError, match="model_health_nope"):

        class Broken(CatalogueCollector):
            METRICS = ("model_health_nope",)


def test_build_info():
    registry = CollectorRegistry()
    registry.register(BuildInfoCollector("1.2.3"))
    assert 'model_health_build_info{version="1.2.3"} 1.0' in generate_latest(registry).decode()
