"""The one family builder: declared metrics, built from the catalogue, absent values left out."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.exposition import BuildInfoCollector, CatalogueCollector, Families


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
