import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.columns import ColumnError
from detectors.compare import compare
from detectors.performance import ClassificationSummary, RegressionSummary, roc_auc
from detectors.profile import (
    ProfileFormatError,
    ProfileMetadata,
    ProfileSettings,
    ReferenceProfile,
    build_profile,
    summarise_current,
)
from detectors.summary import CategoricalSummary, NumericSummary
from exporter.demo.synthetic import synthetic_table
from tests.detectors.strategies import category_arrays, float_arrays


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return synthetic_table(5_000, numeric=5, categorical=2, drifted=0, seed=3)


@pytest.fixture(scope="module")
def profile(table) -> ReferenceProfile:
    return build_profile(
        table,
        model="fraud",
        model_version="7",
        created_at=1_795_000_000.0,
        prediction="prediction",
        label="label",
        trained_at=1_794_000_000.5,
    )


def test_profile_holds_what_drift_and_performance_need(profile, table):
    meta = profile.metadata
    assert (meta.model, meta.model_version, meta.rows) == ("fraud", "7", 5_000)
    assert meta.features == ("num_00", "num_01", "num_02", "num_03", "num_04", "cat_0", "cat_1")
    assert meta.kinds["cat_0"] == "categorical" and meta.kinds["num_00"] == "numeric"
    assert meta.task == "classification" and meta.classes == ("0", "1") and meta.positive == "1"
    assert meta.settings == ProfileSettings()
    assert isinstance(profile.prediction, NumericSummary)
    assert isinstance(profile.label, CategoricalSummary)
    assert isinstance(profile.performance, ClassificationSummary)
    assert profile.loss is not None and profile.loss.count == 5_000
    labels = np.asarray(table.column("label"))
    scores = np.asarray(table.column("prediction"))
    assert meta.performance["roc_auc"] == pytest.approx(
        roc_auc(labels, scores), abs=profile.performance.roc_auc_error_bound() + 1e-12
    )
    assert meta.performance["accuracy"] == pytest.approx(np.mean((scores >= 0.5) == (labels == 1)), abs=1e-12)


def test_profile_round_trips_exactly(profile):
    again = ReferenceProfile.from_table(profile.to_table())
    assert again.metadata == profile.metadata
    assert again.features.keys() == profile.features.keys()
    for name in profile.features:
        assert again.features[name] == profile.features[name]
    assert again.prediction == profile.prediction and again.label == profile.label
    assert again.loss == profile.loss and again.performance == profile.performance


@given(float_arrays(min_size=1, max_size=80), category_arrays(min_size=1, max_size=80), st.data())
def test_any_profile_round_trips(values, categories, data):
    rows = min(values.size, categories.size)
    values, categories = values[:rows], categories[:rows]
    if not np.isfinite(values).any() or all(c is None for c in categories):
        return
    table = pa.table({"x": pa.array(values), "c": pa.array(list(categories), pa.string())})
    settings = ProfileSettings(
        fine_bins=data.draw(st.sampled_from([10, 100, 1000])), psi_bins=10, top_k=data.draw(st.integers(1, 5))
    )
    profile = build_profile(table, model="m", model_version="1", created_at=0.0, settings=settings)
    again = ReferenceProfile.from_table(profile.to_table())
    assert again.metadata == profile.metadata
    assert all(again.features[n] == profile.features[n] for n in ("x", "c"))


def test_regression_profile():
    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    table = pa.table({"x": y, "prediction": y + rng.normal(0, 0.1, 2000), "label": y})
    profile = build_profile(table, model="r", model_version="1", created_at=0.0, prediction="prediction", label="label")
    assert profile.metadata.task == "regression"
    assert isinstance(profile.performance, RegressionSummary)
    assert profile.metadata.performance["rmse"] == pytest.approx(0.1, rel=0.1)
    assert ReferenceProfile.from_table(profile.to_table()).performance == profile.performance


def test_class_predictions_profile():
    table = pa.table(
        {"x": [1.0, 2.0, 3.0, 4.0], "prediction": ["cat", "dog", "dog", "cat"], "label": ["cat", "dog", "cat", "cat"]}
    )
    profile = build_profile(table, model="m", model_version="1", created_at=0.0, prediction="prediction", label="label")
    assert profile.metadata.classes == ("cat", "dog")
    assert profile.metadata.performance["accuracy"] == 0.75
    assert math.isnan(profile.metadata.performance["roc_auc"])


def test_current_data_folds_into_the_frozen_bins(profile, table):
    for name in profile.metadata.features:
        assert compare(profile.features[name], summarise_current(table, name, profile.features[name])).psi == 0.0


def test_incompatible_versions_and_foreign_tables_are_rejected(profile):
    table = profile.to_table()
    newer = ProfileMetadata.to_json(profile.metadata).replace('"format_version": 1', '"format_version": 99')
    with pytest.raises(ProfileFormatError, match="version 99 is not supported"):
        ReferenceProfile.from_table(table.replace_schema_metadata({b"model_health.profile": newer.encode()}))
    with pytest.raises(ProfileFormatError, match="not a model-health profile"):
        ReferenceProfile.from_table(pa.table({"a": [1]}))


def test_build_names_the_bad_column():
    with pytest.raises(ColumnError, match="'nope'"):
        build_profile(pa.table({"a": [1.0]}), model="m", model_version="1", created_at=0.0, features=["nope"])
    with pytest.raises(ColumnError, match="'a' has no finite values"):
        build_profile(pa.table({"a": [float("nan")]}), model="m", model_version="1", created_at=0.0)
    with pytest.raises(ColumnError, match="'t' has type timestamp"):
        build_profile(pa.table({"t": pa.array([0], pa.timestamp("s"))}), model="m", model_version="1", created_at=0.0)
