"""The injection decision and the mutated pod, without any server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import InjectedSidecarConfig, SidecarConfig, load_config
from exporter.injector import names
from exporter.injector.mutation import SidecarConfigValidator, plan
from tests.exporter.injector import reviews

SIDECAR = InjectedSidecarConfig(
    image="registry.example.com/model-health:0.1.0", kafka={"bootstrap_servers": "kafka.data:9092"}
)


@pytest.fixture(scope="module")
def validator() -> SidecarConfigValidator:
    return SidecarConfigValidator()


def _sidecar(pod: dict, where: str = "initContainers") -> dict:
    (container,) = [c for c in pod["spec"].get(where, []) if c["name"] == names.CONTAINER]
    return container


def test_native_sidecar_beside_the_kserve_container(validator: SidecarConfigValidator) -> None:
    original = reviews.kserve_predictor()
    decision = plan(original, "models", "pod", SIDECAR, validator)
    assert decision.outcome == "injected" and decision.warnings == ()
    pod = decision.mutated
    assert pod is not None and original == reviews.kserve_predictor()  # the input is untouched
    init = pod["spec"]["initContainers"]
    # After the storage initializer: the model is in place before monitoring starts.
    assert [c["name"] for c in init] == ["storage-initializer", names.CONTAINER]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["kserve-container"]
    sidecar = init[-1]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == SIDECAR.image
    assert sidecar["command"] == ["model-health", "sidecar", "--config", "/etc/model-health/sidecar/config.yaml"]
    assert sidecar["ports"] == [{"name": "model-health", "containerPort": 9878, "protocol": "TCP"}]
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    assert sidecar["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    metadata = pod["metadata"]
    assert metadata["annotations"][names.STATUS] == "injected"
    assert metadata["labels"][names.SIDECAR_LABEL] == "injected"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[names.CONFIG_VOLUME]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['model-health.io/sidecar-config']"
    )
    assert volumes[names.TMP_VOLUME] == {"name": names.TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}}


def test_generated_config_loads_as_the_sidecar_loads_it(validator: SidecarConfigValidator, tmp_path: Path) -> None:
    decision = plan(reviews.kserve_predictor(), "models", "pod", SIDECAR, validator)
    assert decision.mutated is not None
    text = decision.mutated["metadata"]["annotations"][names.SIDECAR_CONFIG]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path, SidecarConfig, environ={})  # the sidecar's own loader and model, no overrides
    assert (config.model.name, config.model.version, config.model.namespace) == ("fraud", "7", "models")
    assert config.kafka.bootstrap_servers == "kafka.data:9092"
    assert config.gpu.mode == "off"
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9878)


def test_plain_container_mode_for_older_clusters(validator: SidecarConfigValidator) -> None:
    sidecar = SIDECAR.model_copy(update={"native_sidecar": False})
    decision = plan(reviews.seldon_v1_model(), "seldon", "pod", sidecar, validator)
    assert decision.outcome == "injected" and decision.mutated is not None
    container = _sidecar(decision.mutated, "containers")
    assert "restartPolicy" not in container
    assert "initContainers" not in decision.mutated["spec"]
    assert [c["name"] for c in decision.mutated["spec"]["containers"]] == [
        "classifier",
        "seldon-container-engine",
        names.CONTAINER,
    ]


@pytest.mark.parametrize(
    ("pod", "scope", "outcome"),
    [
        (reviews.opted_out(), "namespace", "opted_out"),
        (reviews.opted_out(), "pod", "opted_out"),
        (reviews.already_injected(), "pod", "already_injected"),
        (reviews.unlabelled(), "pod", "not_selected"),
        (reviews.unlabelled(), "namespace", "injected"),
    ],
)
def test_opt_in_rules(pod: dict, scope: str, outcome: str, validator: SidecarConfigValidator) -> None:
    assert plan(pod, "ml", scope, SIDECAR, validator).outcome == outcome  # type: ignore[arg-type]


def test_false_anywhere_beats_true(validator: SidecarConfigValidator) -> None:
    pod = reviews.plain_fastapi()
    pod["metadata"]["labels"][names.INJECT] = "false"
    assert plan(pod, "ml", "pod", SIDECAR, validator).outcome == "opted_out"


def test_unrecognised_inject_value_is_ignored_with_a_warning(validator: SidecarConfigValidator) -> None:
    pod = reviews.unlabelled()
    pod["metadata"]["annotations"][names.INJECT] = "yes"
    decision = plan(pod, "ml", "pod", SIDECAR, validator)
    assert decision.outcome == "not_selected"
    assert any("'yes'" in warning for warning in decision.warnings)


def test_container_already_there_without_status_counts_as_injected(validator: SidecarConfigValidator) -> None:
    pod = reviews.already_injected()
    del pod["metadata"]["annotations"][names.STATUS]
    assert plan(pod, "ml", "pod", SIDECAR, validator).outcome == "already_injected"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda pod: pod["spec"]["containers"][0]["ports"].append({"containerPort": 9878}), "port 9878"),
        (lambda pod: pod["spec"].__setitem__("hostNetwork", True), "host network"),
        (
            lambda pod: pod["spec"].__setitem__("volumes", [{"name": "model-health-tmp", "emptyDir": {}}]),
            "model-health-tmp",
        ),
        (lambda pod: pod["metadata"].__setitem__("labels", {}), "no model name"),
    ],
)
def test_refusals_name_the_reason(change, reason: str, validator: SidecarConfigValidator) -> None:  # type: ignore[no-untyped-def]
    pod = reviews.plain_fastapi()
    change(pod)
    decision = plan(pod, "ml", "pod", SIDECAR, validator)
    assert decision.outcome == "refused" and decision.mutated is None
    assert any(reason in warning and "not injected" in warning for warning in decision.warnings), decision.warnings


def test_missing_version_warns(validator: SidecarConfigValidator) -> None:
    pod = reviews.plain_fastapi()
    del pod["metadata"]["labels"]["app.kubernetes.io/version"]
    decision = plan(pod, "ml", "pod", SIDECAR, validator)
    assert decision.outcome == "injected"
    assert any("model-version" in warning for warning in decision.warnings)


def test_gpu_mode_annotation(validator: SidecarConfigValidator) -> None:
    pod = reviews.plain_fastapi()
    pod["metadata"]["annotations"][names.GPU_MODE] = "sidecar"
    decision = plan(pod, "ml", "pod", SIDECAR, validator)
    assert decision.mutated is not None
    assert yaml.safe_load(decision.mutated["metadata"]["annotations"][names.SIDECAR_CONFIG])["gpu"]["mode"] == "sidecar"
    pod["metadata"]["annotations"][names.GPU_MODE] = "all-of-them"
    decision = plan(pod, "ml", "pod", SIDECAR, validator)
    assert decision.outcome == "injected" and any("all-of-them" in warning for warning in decision.warnings)


def test_validator_names_the_bad_key(validator: SidecarConfigValidator) -> None:
    with pytest.raises(ValueError, match="model.version"):
        validator.check({"model": {"name": "fraud", "version": ""}})
    with pytest.raises(ValueError, match="unknown section"):
        validator.check({"model": {"name": "fraud", "version": "1"}, "bogus": {}})
    with pytest.raises(ValueError, match="lacks"):
        validator.check({})


def test_a_config_the_sidecar_would_refuse_is_not_injected() -> None:
    class Refusing(SidecarConfigValidator):
        def check(self, config: Mapping[str, Any]) -> None:
            raise ValueError("model.name: too long")

    decision = plan(reviews.plain_fastapi(), "ml", "pod", SIDECAR, Refusing())
    assert decision.outcome == "refused" and decision.mutated is None
    assert any("invalid sidecar config: model.name" in warning for warning in decision.warnings)


def test_extra_env_and_resources_from_config(validator: SidecarConfigValidator) -> None:
    sidecar = SIDECAR.model_copy(
        update={
            "env": {"MODEL_HEALTH_KAFKA__MODE": "summaries"},
            "resources": SIDECAR.resources.model_copy(update={"limits": {"cpu": "1", "memory": "512Mi"}}),
        }
    )
    decision = plan(reviews.plain_fastapi(), "ml", "pod", sidecar, validator)
    assert decision.mutated is not None
    container = _sidecar(decision.mutated)
    assert container["env"] == [{"name": "MODEL_HEALTH_KAFKA__MODE", "value": "summaries"}]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
