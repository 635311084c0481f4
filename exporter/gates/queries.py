"""The rollout gates and the autoscaling signal as PromQL: one table, read by every writer.

A gate is one question a rollout controller asks about a canary, as a PromQL query that returns
**exactly one sample**, and the condition the value must meet. The queries read the aggregator's
series and the recording rules of ``model-health alerts``; the canary is the version that has a
baseline (``model_health_version_baseline_info``, from the aggregator's ``models[].baseline_version``
or the default pairing), so a query needs only the model's name — which each controller
supplies through its own template syntax (:data:`FLAGGER_MODEL`, :data:`ARGO_MODEL`).

Two kinds of gate, by what absence means:

* **Evidence gates** (feature drift, prediction drift against the baseline, estimated
  performance): until the canary's window holds enough predictions their series say nothing
  (the decision rules' ``min_samples``) or are absent; the query then answers the passing value
  (``or on() vector(0)``), so a slow trickle of canary traffic does not count as failure. They
  judge once there is evidence.
* **Serving gates** (latency and error ratio against the baseline): absent means the canary
  served nothing in the last 5 minutes, and the query stays empty — Flagger halts advancement
  ("no values found") and counts a failed check, Argo records an error — as for Flagger's own
  request-success-rate check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from alerts.rules import (
    DRIFTING_FEATURES,
    VERSION_ERROR_RATIO,
    VERSION_ESTIMATED,
    WINDOW_SAMPLES,
    version_latency_rule,
)
from exporter.config import AlertsConfig, GatesConfig

FLAGGER_MODEL = "{{ variables.model }}"  # Flagger: the Canary metric's templateVariables.model
ARGO_MODEL = "{{args.model}}"  # Argo Rollouts: the AnalysisTemplate's `model` argument

_CANDIDATE = 'max by (model, model_version) (model_health_version_baseline_info{{model="{model}"}})'


@dataclass(frozen=True)
class Gate:
    """One gate: its name, query, and the condition its one sample must meet.

    ``bound`` is ``max`` (the value must stay at or below ``limit``) or ``min`` (at or above).
    """

    key: str
    title: str
    query: Callable[[str, GatesConfig], str]
    bound: Literal["max", "min"]
    limit: Callable[[GatesConfig], float]
    unit: str
    meaning: str
    kind: Literal["evidence", "serving"]

    def passes(self, value: float, config: GatesConfig) -> bool:
        limit = self.limit(config)
        return value <= limit if self.bound == "max" else value >= limit


def _feature_drift(model: str, config: GatesConfig) -> str:
    drifting = f'{DRIFTING_FEATURES}{{model="{model}", window="{config.window}"}}'
    return (
        f"max(\n  {drifting}\n  * on (model, model_version) group_left\n  {_CANDIDATE.format(model=model)}\n)\n"
        "or on() vector(0)"
    )


def _prediction_drift(model: str, config: GatesConfig) -> str:
    return (
        f'max(model_health_version_prediction_drift_detected{{model="{model}", window="{config.window}"}})\n'
        "or on() vector(0)"
    )


def _latency_ratio(model: str, config: GatesConfig) -> str:
    rule = version_latency_rule(AlertsConfig(gpu_latency={"latency_quantile": config.latency_quantile}))
    return f'max({rule}{{model="{model}"}})'


def _error_ratio_increase(model: str, config: GatesConfig) -> str:
    return f'max({VERSION_ERROR_RATIO}{{model="{model}"}})'


def _estimated_drop(model: str, config: GatesConfig) -> str:
    c = config.conditions
    window = f'model="{model}", window="{config.window}"'
    return (
        f'-min(\n  {VERSION_ESTIMATED}{{{window}, metric="{c.estimated_metric}"}}\n'
        f"  and on (model, model_version, window)\n  {WINDOW_SAMPLES}{{{window}}} >= {c.min_samples}\n)\n"
        "or on() vector(0)"
    )


GATES: tuple[Gate, ...] = (
    Gate(
        "feature-drift",
        "Feature drift of the canary",
        _feature_drift,
        "max",
        lambda c: c.conditions.max_drifting_features,
        "features",
        "How many of the canary's features drift from its reference in the window, by its own decision rule "
        "(effect size and null quantile, at least min_samples predictions). The traffic itself moving away from "
        "what the canary was trained on: promote into drift only knowingly.",
        "evidence",
    ),
    Gate(
        "prediction-drift",
        "Canary predictions against the baseline's",
        _prediction_drift,
        "max",
        lambda c: 0,
        "0/1",
        "1 when the canary's predictions are distributed differently from the baseline version's over the same "
        "window and traffic (PSI or KS D past the model's thresholds and null quantiles, at least min_samples "
        "canary predictions); 0 otherwise, and 0 until there is evidence.",
        "evidence",
    ),
    Gate(
        "latency-ratio",
        "Canary latency against the baseline's",
        _latency_ratio,
        "max",
        lambda c: c.conditions.max_latency_ratio,
        "ratio",
        "The canary's latency quantile (latency_quantile, over the last 5 minutes) divided by the baseline "
        "version's: 1.2 means the canary is 20% slower.",
        "serving",
    ),
    Gate(
        "error-ratio-increase",
        "Canary error ratio above the baseline's",
        _error_ratio_increase,
        "max",
        lambda c: c.conditions.max_error_ratio_increase,
        "ratio",
        "The canary's share of predictions with an error status minus the baseline version's, over the last 5 "
        "minutes: 0.01 is one percentage point more. A difference, not a ratio: a baseline with no errors would "
        "make any canary error an infinite ratio.",
        "serving",
    ),
    Gate(
        "estimated-performance-drop",
        "Estimated performance drop of the canary",
        _estimated_drop,
        "max",
        lambda c: c.conditions.max_estimated_drop,
        "ratio",
        "How far the canary's label-free estimate of estimated_metric lies below the baseline version's over the "
        "same window (CBPE from each version's scores and its profile's calibration; no labels needed). Judged "
        "once the canary's window holds min_samples predictions; 0 before, and where a profile has no calibration.",
        "evidence",
    ),
)
BY_KEY = {gate.key: gate for gate in GATES}


def latency_query(model: str, quantile: float, rate_range: str, model_version: str | None = None) -> str:
    """A model's serving latency quantile over ``rate_range``, once per model across jobs: one sample.

    The sidecar and the aggregator may both count the same requests (the recording rules'
    rule): bucket rates are summed within a job, the larger job's taken.
    """
    matchers = f'model="{model}"' + (f', model_version="{model_version}"' if model_version else "")
    return _latency(quantile, f"model_health_request_duration_seconds_bucket{{{matchers}}}", rate_range)


def _latency(quantile: float, selector: str, rate_range: str) -> str:
    return f"histogram_quantile({quantile:g}, max by (le) (sum by (job, le) (rate({selector}[{rate_range}]))))"


def adapter_latency_query(quantile: float, rate_range: str) -> str:
    """The same latency quantile as a prometheus-adapter ``metricsQuery`` (its ``<<…>>`` template)."""
    return _latency(quantile, "<<.Series>>{<<.LabelMatchers>>}", rate_range)
