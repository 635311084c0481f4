"""``model-health injector``: ``InjectorConfig`` and the settings of the sidecars it injects.

The admission webhook's HTTPS server and certificate, and the injected sidecar: image, resources,
and the ``kafka`` and ``gpu`` sections written into every injected sidecar's own config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from exporter.config.fields import HttpConfig, NonEmpty, Port, Section
from exporter.config.loading import Settings
from exporter.config.sidecar import GpuConfig, SidecarKafkaConfig

# A Kubernetes resource quantity as manifests write it (``50m``, ``64Mi``, ``1``, ``0.5``).
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class InjectorTlsConfig(Section):
    cert_file: Path = Field(
        Path("/etc/model-health/tls/tls.crt"), description="PEM certificate (chain) served; re-read when it changes."
    )
    key_file: Path = Field(
        Path("/etc/model-health/tls/tls.key"), description="PEM private key of `cert_file`; re-read when it changes."
    )


class InjectorHttpConfig(HttpConfig):
    port: Port = Field(8443, description="HTTPS port of `POST /mutate`, `/metrics`, `/healthz` and `/readyz`.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1, description="Largest AdmissionReview accepted; larger gets 413.")
    connection_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest a client may take for the TLS handshake or one request."
    )


class SidecarResourcesConfig(Section):
    requests: dict[ResourceName, Quantity] = Field(
        {"cpu": "50m", "memory": "64Mi"}, description="Resource requests of the injected sidecar."
    )
    limits: dict[ResourceName, Quantity] = Field(
        {"memory": "256Mi"}, description="Resource limits of the injected sidecar (no CPU limit: no throttling)."
    )


class InjectedGpuConfig(GpuConfig):
    mode: Literal["sidecar", "node", "off"] = Field(
        "off",
        description=(
            "`off`: the node agent covers GPUs, and a sidecar sees no GPU it was not allocated; `sidecar`; "
            "`node`. Pods may override it with the `model-health.io/gpu` annotation."
        ),
    )


class InjectedSidecarConfig(Section):
    image: NonEmpty = Field(
        "ghcr.io/model-health/model-health-exporter:0.1.0", description="Image of the injected sidecar."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Pull policy of the sidecar image."
    )
    native_sidecar: bool = Field(
        True,
        description=(
            "Inject as a native sidecar (init container with `restartPolicy: Always`, Kubernetes ≥ 1.29); "
            "false: a plain container, for older clusters."
        ),
    )
    port: Port = Field(9878, description="Port the sidecar listens on in the pod (`POST /`, `/v1/predictions`).")
    run_as_user: int = Field(10001, ge=1, description="Non-root UID (and GID) the sidecar runs as.")
    resources: SidecarResourcesConfig = Field(
        default_factory=SidecarResourcesConfig, description="Resources of the injected sidecar."
    )
    kafka: SidecarKafkaConfig = Field(
        default_factory=SidecarKafkaConfig, description="The `kafka` section of every injected sidecar's config."
    )
    gpu: InjectedGpuConfig = Field(
        default_factory=InjectedGpuConfig, description="The `gpu` section of every injected sidecar's config."
    )
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="Extra environment of the sidecar, e.g. `MODEL_HEALTH_…` overrides."
    )


class InjectorConfig(Settings):
    """``model-health injector --config FILE``."""

    http: InjectorHttpConfig = Field(default_factory=InjectorHttpConfig, description="HTTPS server.")
    tls: InjectorTlsConfig = Field(default_factory=InjectorTlsConfig, description="Serving certificate.")
    sidecar: InjectedSidecarConfig = Field(default_factory=InjectedSidecarConfig, description="The injected sidecar.")
