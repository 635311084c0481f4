"""``model-health sidecar`` and ``model-health node``: ``SidecarConfig``, ``NodeConfig`` and their sections.

The sidecar serves beside one model: it ingests records over HTTP, queues them for Kafka (or folds
them into summaries), samples the pod's GPUs and times requests. The node agent samples every
GPU of a node and attributes processes to pods; it shares the sidecar's GPU section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from exporter.config.fields import (
    BootstrapServers,
    HttpConfig,
    NonEmpty,
    Port,
    Section,
    Topic,
    Version,
    require_items,
    split_servers,
)
from exporter.config.loading import Settings
from exporter.decoders.inference_pairs import LOGGER_MODES

# Prometheus client's default buckets, in seconds: a familiar starting point for latency.
DEFAULT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class SidecarModelConfig(Section):
    name: NonEmpty = Field(description="Name of the model this sidecar serves beside.")
    version: Version = Field(description="Version of the model (quote it in YAML).")
    namespace: str | None = Field(None, min_length=1, description="Kubernetes namespace of the model.")
    reference: Path | None = Field(
        None, description="Reference profile of the model; required in `kafka.mode: summaries` (its bins)."
    )


class SidecarKafkaConfig(Section):
    bootstrap_servers: BootstrapServers = Field(
        "127.0.0.1:9092", description="Kafka brokers as a comma-separated `host:port` list (a YAML list also works)."
    )
    predictions_topic: Topic = Field("model-predictions", description="Topic the sidecar writes records to.")
    summaries_topic: Topic = Field(
        "model-health-summaries", description="Topic the sidecar writes interval summaries to in `summaries` mode."
    )
    batch_max_records: int = Field(500, ge=1, description="Most records in one Kafka message.")
    batch_max_seconds: float = Field(1.0, gt=0, description="Longest a record waits before its batch is sent.")
    format: Literal["ndjson", "arrow"] = Field("ndjson", description="Encoding of batched records.")
    mode: Literal["records", "summaries"] = Field(
        "records", description="Forward every record, or one mergeable summary per interval."
    )
    summary_bucket_seconds: int = Field(
        60,
        gt=0,
        description="Event-time width of one summary in `summaries` mode; must divide the aggregator's `bucket_seconds`.",
    )
    summary_format: Literal[1, 2] = Field(
        2,
        description=(
            "Summary message format in `summaries` mode: 2 packs counts; keep 1 while an aggregator of a "
            "build that reads only format 1 consumes them."
        ),
    )
    deadletter_topic: Topic = Field(
        "model-health-deadletter", description="Topic that receives refused records, with the reason in a header."
    )
    client: Literal["kafka-python", "confluent"] = Field(
        "kafka-python", description="Kafka client library; `confluent` needs the `confluent` extra."
    )

    @property
    def servers(self) -> tuple[str, ...]:
        return split_servers(self.bootstrap_servers)


class KServeJoinConfig(Section):
    join_ttl_seconds: float = Field(
        60.0, gt=0, description="How long a logged request waits for its response (and a response for its request)."
    )
    join_max_pending: int = Field(
        10_000, ge=1, description="Most unpaired request/response events held; the oldest leave first, counted."
    )
    logger_mode: Literal[LOGGER_MODES] = Field(  # type: ignore[valid-type]
        "auto",
        description=(
            "The payload logger's `logger.mode`. `all`: requests pair with their responses; `request` / "
            "`response`: every event is taken at once, with no partner to wait for and no serving error counted "
            "for the missing half; `auto`: pair, and learn `request` (or `response`) when an event leaves "
            "unpaired without the other side ever having been seen."
        ),
    )


class GpuConfig(Section):
    mode: Literal["sidecar", "node", "off"] = Field(
        "sidecar", description="`sidecar`: the GPUs visible to this pod; `node`: every GPU on the node; `off`."
    )
    interval_seconds: float = Field(1.0, gt=0, description="Time between NVML samples of utilization and memory.")
    slow_interval_seconds: float = Field(
        15.0,
        gt=0,
        description="Time between costly NVML queries (energy counter ~3 ms, PCIe throughput ~21 ms) and MIG layout reads.",
    )
    slow_queries: bool = Field(
        True, description="Read the energy counter and PCIe throughput; `false` leaves those series out."
    )

    @field_validator("slow_interval_seconds")
    @classmethod
    def _slow_not_faster(cls, value: float, info: ValidationInfo) -> float:
        fast = info.data.get("interval_seconds")
        if fast is not None and value < fast:
            raise ValueError(f"must be at least interval_seconds ({fast})")
        return value


class SidecarHttpConfig(HttpConfig):
    port: Port = Field(9878, description="Port of the HTTP server (ingest and `/metrics`).")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest request body accepted; larger gets 413.")


class QueueConfig(Section):
    max_records: int = Field(
        10_000, ge=1, description="Most records held for Kafka; beyond it ingest answers 503 and counts the refusal."
    )
    acknowledge: Literal["delivered", "queued"] = Field(
        "delivered",
        description=(
            "When ingest answers 2xx in `records` mode: once Kafka has the records (`delivered`: a `kill -9` loses "
            "nothing answered for), or once they are in this in-memory queue (`queued`: no wait, but a `kill -9` "
            "loses what it holds). `summaries` mode answers once records are folded into a summary."
        ),
    )
    delivered_ids: int = Field(
        100_000,
        ge=0,
        description=(
            "With `acknowledge: delivered`, request ids of records Kafka confirmed that are remembered, so a client "
            "that retries after a 5xx although its records arrived is answered 2xx without sending them twice; "
            "`0` turns it off. About 80 bytes each."
        ),
    )
    acknowledge_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "With `acknowledge: delivered`, how long a request waits for Kafka; records not yet sent by then are "
            "withdrawn and the request gets 503 `delivery_timeout`."
        ),
    )


class LatencyConfig(Section):
    sla_seconds: float = Field(0.25, gt=0, description="Latency objective; added to `buckets` if missing.")
    buckets: tuple[float, ...] = Field(
        DEFAULT_LATENCY_BUCKETS,
        validate_default=True,
        description="Upper bounds of the request-duration histogram buckets, increasing; at least one.",
    )

    @field_validator("buckets")
    @classmethod
    def _buckets_sorted_with_sla(cls, buckets: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        require_items(buckets)
        if any(bound <= 0 for bound in buckets):
            raise ValueError("bucket bounds must be positive")
        if any(a >= b for a, b in zip(buckets, buckets[1:])):
            raise ValueError("bucket bounds must be strictly increasing")
        # The SLA must be a bucket bound, or "share of requests within SLA" can't be read off.
        sla = info.data.get("sla_seconds")
        if sla is not None and sla not in buckets:
            buckets = tuple(sorted((*buckets, sla)))
        return buckets


class SidecarConfig(Settings):
    """``model-health sidecar --config FILE``."""

    model: SidecarModelConfig = Field(description="The model served beside this sidecar.")
    kafka: SidecarKafkaConfig = Field(default_factory=SidecarKafkaConfig, description="Kafka producer.")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="NVML GPU sampling.")
    http: SidecarHttpConfig = Field(default_factory=SidecarHttpConfig, description="HTTP server.")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Buffer between ingest and Kafka.")
    latency: LatencyConfig = Field(default_factory=LatencyConfig, description="Request-duration histogram.")
    kserve: KServeJoinConfig = Field(
        default_factory=KServeJoinConfig, description="Pairing KServe payload-logger requests with their responses."
    )

    @model_validator(mode="after")
    def _summaries_need_a_profile(self) -> SidecarConfig:
        if self.kafka.mode == "summaries" and self.model.reference is None:
            raise ValueError("model.reference: required when kafka.mode is summaries (summaries use its bins)")
        return self


# ---------------------------------------------------------------------------------------------
# The GPU node agent (a DaemonSet).


class NodeHttpConfig(HttpConfig):
    port: Port = Field(9879, description="Port of the node agent's HTTP server (`/metrics`, `/healthz`, `/readyz`).")


class NodeGpuConfig(GpuConfig):
    mode: Literal["node", "off"] = Field(
        "node", description="`node`: every GPU on the node, processes attributed to pods; `off`."
    )


class NodeConfig(Settings):
    """``model-health node --config FILE``: the GPU node agent (a DaemonSet with ``hostPID``)."""

    gpu: NodeGpuConfig = Field(default_factory=NodeGpuConfig, description="NVML GPU sampling.")
    http: NodeHttpConfig = Field(default_factory=NodeHttpConfig, description="HTTP server.")
    proc_root: Path = Field(
        Path("/proc"),
        description="Where host processes' `<pid>/cgroup` files are read for pod attribution (`/proc` with hostPID).",
    )
