"""PromQL the dashboards share: serving counters counted once per model, latency quantiles, ages."""

from __future__ import annotations

from dashboards.common import RATE


def once_per_model(counter: str, matchers: str = "", by: str = "model, model_version") -> str:
    """Rate of a serving counter summed within each job, then the largest job's.

    The sidecar and the aggregator may both count the same requests; taking the larger job's
    sum counts them once whichever of the two is deployed (as the recording rules do).
    """
    selector = f"{counter}{{{matchers}}}" if matchers else counter
    return f"max by ({by}) (sum by (job, {by}) (rate({selector}[{RATE}])))"


def latency_quantile(quantile: float, matchers: str = "", by: str = "model, model_version") -> str:
    """The ``quantile`` of model_health_request_duration_seconds over ``$__rate_interval``."""
    buckets = once_per_model("model_health_request_duration_seconds_bucket", matchers, f"{by}, le" if by else "le")
    return f"histogram_quantile({quantile:g}, {buckets})"


def age(timestamp_expr: str) -> str:
    """Seconds since a timestamp series (the catalogue exports timestamps, never ages)."""
    return f"time() - {timestamp_expr}"


def per_gpu_rate(counter: str, matchers: str, by: str) -> str:
    """The rate of a per-GPU counter summed ``by`` labels, each GPU counted once.

    The sidecar (mode ``sidecar``) and the node agent may both export the same GPU's series: the
    largest per ``gpu_uuid`` (and ``by``) counts, as the recording rules take the larger job's.
    """
    labels = ", ".join(dict.fromkeys(["gpu_uuid", *(label.strip() for label in by.split(",") if label.strip())]))
    inner = f"max by ({labels}) (rate({counter}{{{matchers}}}[{RATE}]))"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"
