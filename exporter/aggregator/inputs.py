"""What the aggregator reads, in both modes: its input topics, its consumer settings and the configured models."""

from __future__ import annotations

from detectors.profile import ReferenceProfile
from exporter.config import AggregatorConfig, ModelConfig
from exporter.kafka import ConsumerSettings
from exporter.pipeline.model_versions import ModelIdentity, ModelKey
from exporter.profiles import load_profile

Models = dict[ModelKey, tuple[ModelConfig, ReferenceProfile]]


def input_topics(config: AggregatorConfig) -> list[str]:
    """The topics consumed: predictions and labels, or with ``kafka.format: seldon`` each
    model's Seldon inputs and outputs topics (Seldon writes one pair per model) and labels."""
    kafka = config.kafka
    if kafka.format != "seldon":
        return [kafka.predictions_topic, kafka.labels_topic]
    seldon = {
        f"seldon.{m.namespace}.{m.seldon_topics}.{m.name}.{side}": None
        for m in config.models
        for side in ("inputs", "outputs")
    }
    return [*seldon, kafka.labels_topic]


def model_identity(config: AggregatorConfig) -> ModelIdentity:
    """The configured versions and the deployment slots each serves (the model-identity rule)."""
    return ModelIdentity.of((m.name, m.version, m.slots) for m in config.models)


def logger_modes(config: AggregatorConfig) -> dict[str, str]:
    """Each model's payload-logger mode, where it is not ``auto`` (one mode per model name)."""
    return {m.name: m.logger_mode for m in config.models if m.logger_mode != "auto"}


def load_models(config: AggregatorConfig) -> Models:
    """Every configured model with its profile; a missing or bad profile fails the start."""
    return {(m.name, m.version): (m, load_profile(m.reference)) for m in config.models}


def consumer_settings(config: AggregatorConfig, group: str, client_id: str = "model-health") -> ConsumerSettings:
    """A group consumer of the configured cluster, with the configured session timings."""
    kafka = config.kafka
    return ConsumerSettings(
        kafka.bootstrap_servers,
        group,
        client_id=client_id,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        max_poll_interval_ms=kafka.max_poll_interval_ms,
    )
