"""Deciding whether to inject, and the pod with the sidecar added: pure functions on dicts.

``plan(pod, namespace, scope, sidecar)`` returns a :class:`Decision`: the outcome, the
mutated pod when the sidecar goes in, and warnings for the person creating the pod. The
admission layer diffs the original and mutated pods into a JSONPatch; nothing here does
I/O.

Opt-in: ``model-health.io/inject: "true"`` as a pod label or annotation; or, for pods that
reach the injector through the namespace-scoped webhook (``scope="namespace"``: the
namespace carries the label ``model-health.io/inject: "true"``), any pod that does not opt
out. ``"false"`` in either place always opts out. The status annotation
``model-health.io/status: injected`` makes a second pass (reinvocation) a no-op.

The sidecar goes in as a native sidecar (an init container with ``restartPolicy: Always``,
Kubernetes ≥ 1.29) or, for older clusters, as a plain container. Its config is generated
(validated against the sidecar's own config model) and written to a pod annotation, which a
downward-API volume mounts as the sidecar's config file — so the config travels with the
pod and ``kubectl get pod -o yaml`` shows exactly what the sidecar runs with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import TypeAdapter, ValidationError

from exporter.config import GpuConfig, InjectedSidecarConfig, SidecarConfig
from exporter.injector import names
from exporter.injector.identity import ModelIdentity, NoModelName, model_identity

Scope = Literal["pod", "namespace"]
Outcome = Literal["injected", "already_injected", "opted_out", "not_selected", "refused"]
SIDECAR_HTTP_HOST = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod IP
TMP_SIZE_LIMIT = "64Mi"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    mutated: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    identity: ModelIdentity | None = field(default=None, compare=False)


class SidecarConfigValidator:
    """Checks a generated sidecar config against ``SidecarConfig``'s sections.

    Section by section with ``TypeAdapter``: building ``SidecarConfig`` itself would read this
    process's ``MODEL_HEALTH_…`` environment, which belongs to the injector, not the sidecar.
    """

    def __init__(self) -> None:
        self._sections = {
            name: TypeAdapter(info.annotation)
            for name, info in SidecarConfig.model_fields.items()
            if info.annotation is not None
        }
        self._required = {name for name, info in SidecarConfig.model_fields.items() if info.is_required()}

    def check(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the first bad key."""
        missing = self._required - set(config)
        if missing:
            raise ValueError(f"sidecar config lacks {sorted(missing)}")
        for key, value in config.items():
            adapter = self._sections.get(key)
            if adapter is None:
                raise ValueError(f"sidecar config has unknown section {key!r}")
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in (key, *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None


def _metadata(pod: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    return dict(labels), dict(annotations)


def _inject_votes(labels: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[set[str], list[str]]:
    votes: set[str] = set()
    warnings: list[str] = []
    for where, mapping in (("label", labels), ("annotation", annotations)):
        value = mapping.get(names.INJECT)
        if value is None:
            continue
        text = str(value).strip().lower()
        if text in ("true", "false"):
            votes.add(text)
        else:
            warnings.append(f'{names.INJECT} {where} is {value!r}, neither "true" nor "false"; ignored')
    return votes, warnings


def _all_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _conflict(spec: Mapping[str, Any], sidecar: InjectedSidecarConfig) -> str | None:
    if spec.get("hostNetwork"):
        return "pods on the host network are not injected (the sidecar port would clash between pods on a node)"
    volumes = {volume.get("name") for volume in spec.get("volumes") or []}
    taken = volumes & {names.CONFIG_VOLUME, names.TMP_VOLUME}
    if taken:
        return f"the pod already has a volume named {sorted(taken)[0]}"
    for container in _all_containers(spec):
        for port in container.get("ports") or []:
            if port.get("containerPort") == sidecar.port:
                return f"container {container.get('name')!r} already uses port {sidecar.port}"
            if port.get("name") == names.PORT_NAME:
                return f"container {container.get('name')!r} already has a port named {names.PORT_NAME}"
    return None


def sidecar_config(
    identity: ModelIdentity, namespace: str, gpu_mode: str, sidecar: InjectedSidecarConfig
) -> dict[str, Any]:
    """The config file of one injected sidecar, as a plain mapping."""
    model: dict[str, Any] = {"name": identity.name, "version": identity.version}
    if namespace:
        model["namespace"] = namespace
    gpu = sidecar.gpu.model_dump(mode="json")
    gpu["mode"] = gpu_mode
    return {
        "model": model,
        "kafka": sidecar.kafka.model_dump(mode="json"),
        "gpu": gpu,
        "http": {"host": SIDECAR_HTTP_HOST, "port": sidecar.port},
    }


def sidecar_container(sidecar: InjectedSidecarConfig) -> dict[str, Any]:
    """The container (or native sidecar init container) spec."""
    probe = {"httpGet": {"path": "/healthz", "port": names.PORT_NAME}, "periodSeconds": 10, "timeoutSeconds": 2}
    container: dict[str, Any] = {
        "name": names.CONTAINER,
        "image": sidecar.image,
        "imagePullPolicy": sidecar.image_pull_policy,
        "command": ["model-health", "sidecar", "--config", f"{names.CONFIG_DIR}/{names.CONFIG_FILE}"],
        "ports": [{"name": names.PORT_NAME, "containerPort": sidecar.port, "protocol": "TCP"}],
        "livenessProbe": {**probe, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": names.PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
        },
        "resources": {
            key: dict(value)
            for key, value in (("requests", sidecar.resources.requests), ("limits", sidecar.resources.limits))
            if value
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": sidecar.run_as_user,
            "runAsGroup": sidecar.run_as_user,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": names.CONFIG_VOLUME, "mountPath": names.CONFIG_DIR, "readOnly": True},
            {"name": names.TMP_VOLUME, "mountPath": "/tmp"},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if sidecar.env:
        container["env"] = [{"name": key, "value": value} for key, value in sorted(sidecar.env.items())]
    if sidecar.native_sidecar:
        # An init container that keeps running: starts before, and stops after, the model server.
        container["restartPolicy"] = "Always"
    return container


def _volumes() -> list[dict[str, Any]]:
    return [
        {
            "name": names.CONFIG_VOLUME,
            "downwardAPI": {
                "items": [
                    {
                        "path": names.CONFIG_FILE,
                        "fieldRef": {
                            "apiVersion": "v1",
                            "fieldPath": f"metadata.annotations['{names.SIDECAR_CONFIG}']",
                        },
                    }
                ]
            },
        },
        {"name": names.TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
    ]


def _gpu_mode(annotations: Mapping[str, str], sidecar: InjectedSidecarConfig, warnings: list[str]) -> str:
    requested = annotations.get(names.GPU_MODE)
    if requested is None:
        return sidecar.gpu.mode
    try:
        return GpuConfig(mode=requested).mode
    except ValidationError:
        warnings.append(f"{names.GPU_MODE} is {requested!r}, not sidecar, node or off; using {sidecar.gpu.mode}")
        return sidecar.gpu.mode


def plan(
    pod: Mapping[str, Any],
    namespace: str,
    scope: Scope,
    sidecar: InjectedSidecarConfig,
    validator: SidecarConfigValidator,
) -> Decision:
    """What to do with ``pod`` (as the AdmissionReview carries it) created in ``namespace``."""
    labels, annotations = _metadata(pod)
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return Decision("refused", "pod has no spec", warnings=("model-health sidecar not injected: pod has no spec",))
    if annotations.get(names.STATUS) == names.STATUS_INJECTED or any(
        container.get("name") == names.CONTAINER for container in _all_containers(spec)
    ):
        return Decision("already_injected", "sidecar already present")
    votes, warnings = _inject_votes(labels, annotations)
    if "false" in votes:
        return Decision("opted_out", f"{names.INJECT} is false", warnings=tuple(warnings))
    if "true" not in votes and scope != "namespace":
        return Decision("not_selected", f"no {names.INJECT}: true on the pod", warnings=tuple(warnings))

    def refuse(reason: str) -> Decision:
        return Decision("refused", reason, warnings=(*warnings, f"model-health sidecar not injected: {reason}"))

    try:
        identity = model_identity(labels, annotations)
    except NoModelName as exc:
        return refuse(str(exc))
    conflict = _conflict(spec, sidecar)
    if conflict is not None:
        return refuse(conflict)
    if not identity.version_known:
        warnings.append(
            f"model-health: model {identity.name!r} has no version; set {names.MODEL_VERSION} "
            f"(records are labelled {identity.version!r})"
        )
    config = sidecar_config(identity, namespace, _gpu_mode(annotations, sidecar, warnings), sidecar)
    try:
        validator.check(config)
    except ValueError as exc:
        return refuse(f"invalid sidecar config: {exc}")

    mutated = copy.deepcopy(dict(pod))
    metadata = mutated.setdefault("metadata", {})
    metadata.setdefault("annotations", {})
    metadata["annotations"] = {
        **(metadata["annotations"] or {}),
        names.STATUS: names.STATUS_INJECTED,
        names.SIDECAR_CONFIG: yaml.safe_dump(config, sort_keys=False),
    }
    metadata["labels"] = {**(metadata.get("labels") or {}), names.SIDECAR_LABEL: names.STATUS_INJECTED}
    new_spec = mutated["spec"]
    target = "initContainers" if sidecar.native_sidecar else "containers"
    new_spec[target] = [*(new_spec.get(target) or []), sidecar_container(sidecar)]
    new_spec["volumes"] = [*(new_spec.get("volumes") or []), *_volumes()]
    return Decision(
        "injected",
        f"model {identity.name!r} version {identity.version!r} (from {identity.source})",
        mutated=mutated,
        warnings=tuple(warnings),
        identity=identity,
    )
