"""Model identity from pod metadata: explicit annotations, KServe, Seldon, app labels."""

from __future__ import annotations

import pytest

from exporter.injector.identity import UNKNOWN_VERSION, NoModelName, model_identity


def test_explicit_annotation_wins_over_framework_labels() -> None:
    identity = model_identity(
        {"serving.kserve.io/inferenceservice": "isvc-name", "app.kubernetes.io/version": "2"},
        {"model-health.io/model": "fraud", "model-health.io/model-version": "7"},
    )
    assert (identity.name, identity.version, identity.source, identity.version_known) == (
        "fraud",
        "7",
        "annotation",
        True,
    )


def test_model_label_counts_like_the_annotation() -> None:
    assert model_identity({"model-health.io/model": "fraud", "model-health.io/model-version": "1"}, {}).name == "fraud"


def test_kserve_inferenceservice_label() -> None:
    identity = model_identity(
        {"serving.kserve.io/inferenceservice": "fraud", "component": "predictor"},
        {"model-health.io/model-version": "7"},
    )
    assert (identity.name, identity.version, identity.source) == ("fraud", "7", "kserve")


def test_seldon_v1_deployment_label_and_version_label() -> None:
    identity = model_identity({"seldon-deployment-id": "income", "seldon.io/model": "true", "version": "v2"}, {})
    assert (identity.name, identity.version, identity.source) == ("income", "v2", "seldon")


def test_app_kubernetes_io_labels() -> None:
    identity = model_identity({"app.kubernetes.io/name": "churn", "app.kubernetes.io/version": "3"}, {})
    assert (identity.name, identity.version, identity.source) == ("churn", "3", "app-label")
    assert model_identity({"app": "legacy"}, {}).name == "legacy"


def test_missing_version_is_unknown_and_flagged() -> None:
    identity = model_identity({"serving.kserve.io/inferenceservice": "fraud"}, {})
    assert identity.version == UNKNOWN_VERSION and not identity.version_known


def test_no_name_says_what_to_set() -> None:
    with pytest.raises(NoModelName, match="model-health.io/model"):
        model_identity({"pod-template-hash": "abc"}, {})


def test_seldon_v2_server_needs_an_explicit_model() -> None:
    labels = {"app": "seldon-server", "seldon-server-name": "mlserver", "app.kubernetes.io/name": "mlserver"}
    with pytest.raises(NoModelName, match="Seldon Core v2"):
        model_identity(labels, {})
    assert (
        model_identity(labels, {"model-health.io/model": "iris", "model-health.io/model-version": "1"}).name == "iris"
    )


def test_blank_values_do_not_count() -> None:
    identity = model_identity({"serving.kserve.io/inferenceservice": "fraud"}, {"model-health.io/model": "  "})
    assert identity.name == "fraud"
