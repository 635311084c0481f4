"""``model-health relay``: ``RelayConfig``, the retraining target kinds and delivery settings.

The relay takes Alertmanager's notifications, picks the retraining recommendations and delivers
each, deduplicated and cooled down, to one target: a signed generic webhook, Argo Events, Kubeflow
Pipelines or GitHub ``repository_dispatch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from exporter.config.fields import HttpConfig, HttpUrl, NonEmpty, Port, Section
from exporter.config.loading import Settings

RelayTargetKind = Literal["generic", "argo", "kubeflow", "github"]


class RelayHttpConfig(HttpConfig):
    port: Port = Field(9880, description="Port of the HTTP server (`POST /v1/alertmanager` and `/metrics`).")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1, description="Largest Alertmanager notification accepted; larger gets 413."
    )


class RelayAuthConfig(Section):
    token_file: Path = Field(
        description="File holding the bearer token Alertmanager must send (`http_config.authorization`)."
    )


class RelayStateConfig(Section):
    dir: Path = Field(
        Path("/var/lib/model-health/relay"),
        description="Directory of the relay's SQLite state: pending deliveries, seen alerts, cooldowns.",
    )
    dedup_retention_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long an alert (fingerprint + startsAt) is remembered as handled."
    )
    history_retention_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long finished deliveries stay in the state for inspection."
    )


class RelayRetrainConfig(Section):
    alert_name: NonEmpty = Field(
        "ModelHealthRetrainRecommended", description="`alertname` the relay acts on; other alerts are ignored."
    )
    cooldown_seconds: float = Field(
        6 * 3600.0, ge=0, description="Least time between two retraining requests for one model (and version)."
    )
    model_label: NonEmpty = Field("model", description="Alert label naming the model.")
    version_label: NonEmpty = Field(
        "model_version", description="Alert label naming the model version; part of the cooldown key when present."
    )


class RelayRetryConfig(Section):
    max_attempts: int = Field(8, ge=1, description="Attempts per delivery, the first included, before it fails.")
    base_backoff_seconds: float = Field(1.0, gt=0, description="Backoff before the first retry; doubles per retry.")
    max_backoff_seconds: float = Field(300.0, gt=0, description="Longest backoff between two attempts.")
    jitter: Literal["full", "none"] = Field(
        "full", description="`full`: wait a uniform random time up to the backoff; `none`: the backoff itself."
    )
    max_retry_after_seconds: float = Field(
        3600.0, ge=0, description="Longest `Retry-After` (from 429/503 answers) honoured."
    )

    @field_validator("max_backoff_seconds")
    @classmethod
    def _max_not_below_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("base_backoff_seconds")
        if base is not None and value < base:
            raise ValueError(f"must be at least base_backoff_seconds ({base})")
        return value


class RelayTimeoutsConfig(Section):
    connect_seconds: float = Field(5.0, gt=0, description="Longest wait to connect to the target.")
    read_seconds: float = Field(30.0, gt=0, description="Longest wait for the target's answer.")


class GithubTargetConfig(Section):
    repository: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="`owner/repo` receiving `repository_dispatch`."
    )
    token_file: Path = Field(description="File holding a GitHub token allowed to dispatch to the repository.")
    event_type: str = Field(
        "model-health-retrain", min_length=1, max_length=100, description="`event_type` workflows filter on."
    )
    api_version: NonEmpty = Field("2022-11-28", description="`X-GitHub-Api-Version` header.")


class KubeflowTargetConfig(Section):
    pipeline_id: NonEmpty = Field(description="Pipeline to run.")
    pipeline_version_id: str | None = Field(
        None, min_length=1, description="Pipeline version to run; unset: the pipeline's latest version."
    )
    experiment_id: str | None = Field(None, min_length=1, description="Experiment the run belongs to.")
    token_file: Path | None = Field(None, description="File holding a bearer token for the Pipelines API.")


class ArgoTargetConfig(Section):
    endpoint: str = Field(
        "/model-health",
        pattern=r"^/",
        description="Path of the Argo Events webhook event source, appended to `target.url`.",
    )
    token_file: Path | None = Field(
        None, description="File holding the event source's `authSecret` bearer token, if it has one."
    )


class RelayTargetConfig(Section):
    kind: RelayTargetKind = Field("generic", description="What receives retraining requests.")
    url: HttpUrl | None = Field(
        None,
        description=(
            "`generic`: the webhook URL; `argo`: the event source service; `kubeflow`: the Pipelines API "
            "base URL; `github`: the API base URL (unset: https://api.github.com)."
        ),
    )
    secret_file: Path | None = Field(
        None,
        description="File holding the Standard Webhooks secret (`whsec_…`); required for `generic` and `argo`.",
    )
    ca_file: Path | None = Field(None, description="CA bundle for an https target with a private CA.")
    github: GithubTargetConfig | None = Field(None, description="`repository_dispatch` options (kind `github`).")
    kubeflow: KubeflowTargetConfig | None = Field(None, description="Pipelines run options (kind `kubeflow`).")
    argo: ArgoTargetConfig | None = Field(None, description="Argo Events options (kind `argo`; defaults apply).")
    retry: RelayRetryConfig = Field(default_factory=RelayRetryConfig, description="Retries of a failed delivery.")
    timeouts: RelayTimeoutsConfig = Field(default_factory=RelayTimeoutsConfig, description="HTTP timeouts.")
    concurrency: int = Field(4, ge=1, le=64, description="Deliveries in flight at once.")

    @model_validator(mode="after")
    def _kind_options(self) -> RelayTargetConfig:
        sections = {"github": self.github, "kubeflow": self.kubeflow, "argo": self.argo}
        for name, section in sections.items():
            if section is not None and name != self.kind:
                raise ValueError(f"{name}: options for kind {name!r}, but kind is {self.kind!r}")
        if self.kind in ("github", "kubeflow") and sections[self.kind] is None:
            raise ValueError(f"{self.kind}: required when kind is {self.kind!r}")
        if self.kind != "github" and self.url is None:
            raise ValueError(f"url: required when kind is {self.kind!r}")
        if self.kind in ("generic", "argo") and self.secret_file is None:
            raise ValueError(f"secret_file: required when kind is {self.kind!r} (receivers verify the signature)")
        return self


class RelayConfig(Settings):
    """``model-health relay --config FILE``."""

    target: RelayTargetConfig = Field(description="Where retraining requests go.")
    auth: RelayAuthConfig = Field(description="Authentication of Alertmanager's requests.")
    retrain: RelayRetrainConfig = Field(default_factory=RelayRetrainConfig, description="Which alerts act, how often.")
    http: RelayHttpConfig = Field(default_factory=RelayHttpConfig, description="HTTP server.")
    state: RelayStateConfig = Field(default_factory=RelayStateConfig, description="Durable relay state.")
