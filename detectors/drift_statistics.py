"""Every per-column drift statistic in one table.

A row says, for one field of :class:`~detectors.compare.ColumnDrift`: the column kinds it is
computed for, its key in ``model-health drift --format json``, the feature gauge that exports
it, and — for the statistics the decision rule gates on (PSI, KS D, JS distance) — the name the
rule and the config's thresholds know it by, its default effect-size threshold and how its
null quantile is found. The decision rule, ``ColumnDrift``'s JSON, the aggregator's feature
metrics and the model dashboard's drift table all read it, so adding a statistic is a
``ColumnDrift`` field, the code that computes it, and one row here.

Pure data: no numpy or scipy, so reading the table (the config does, for its defaults) is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal["numeric", "categorical"]
NullQuantile = Literal["kolmogorov", "bootstrap"]
BOTH: frozenset[Kind] = frozenset({"numeric", "categorical"})
NUMERIC: frozenset[Kind] = frozenset({"numeric"})
CATEGORICAL: frozenset[Kind] = frozenset({"categorical"})


@dataclass(frozen=True)
class Decision:
    """How the decision rule gates on a statistic (see :mod:`detectors.decision`)."""

    method: str  # its name in ``fired``, in DriftRule's ``<method>_threshold`` and in the config's thresholds
    default_threshold: float  # effect size at or past which it may fire
    # ``kolmogorov``: kstwo's quantile for the sample sizes; ``bootstrap``: multinomial draws
    # from the reference's bin shares (the statistic needs binned counts).
    null_quantile: NullQuantile


@dataclass(frozen=True)
class DriftStatistic:
    """One per-column statistic: one row of :data:`DRIFT_STATISTICS`."""

    attribute: str  # the ColumnDrift field holding it
    kinds: frozenset[Kind]  # the column kinds it is computed for; absent (left out of JSON) for the others
    json_key: str  # its key under ``features.<name>`` in the drift JSON
    metric: str | None  # the catalogue gauge exporting it per (model, version, feature, window); None: not exported
    title: str | None  # its column on the model dashboard's drift table; None: not shown there
    decision: Decision | None = None  # None: reported, never gated on

    def applies_to(self, kind: Kind) -> bool:
        return kind in self.kinds


# In the order the aggregator exports them and the dashboard's drift table shows them.
DRIFT_STATISTICS: tuple[DriftStatistic, ...] = (
    DriftStatistic(
        "psi",
        BOTH,
        json_key="psi",
        metric="model_health_feature_psi",
        title="PSI",
        decision=Decision("psi", 0.2, "bootstrap"),
    ),
    DriftStatistic(
        "ks_statistic",
        NUMERIC,
        json_key="ks_statistic",
        metric="model_health_feature_ks_statistic",
        title="KS D",
        decision=Decision("ks", 0.1, "kolmogorov"),
    ),
    DriftStatistic("ks_pvalue", NUMERIC, json_key="ks_pvalue", metric="model_health_feature_ks_pvalue", title="KS p"),
    DriftStatistic(
        "ks_error_bound", NUMERIC, json_key="ks_error_bound", metric="model_health_feature_ks_error_bound", title=None
    ),
    DriftStatistic(
        "js_distance",
        CATEGORICAL,
        json_key="js_distance",
        metric="model_health_feature_js_distance",
        title="JS distance",
        decision=Decision("js", 0.1, "bootstrap"),
    ),
    DriftStatistic(
        "chi2_pvalue", CATEGORICAL, json_key="chi2_pvalue", metric="model_health_feature_chi2_pvalue", title=None
    ),
    DriftStatistic(
        "wasserstein_normed",
        NUMERIC,
        json_key="wasserstein_normed",
        metric="model_health_feature_wasserstein_normed",
        title="Wasserstein (normed)",
    ),
    DriftStatistic(
        "current_missing_ratio",
        BOTH,
        json_key="current_missing_ratio",
        metric="model_health_feature_missing_ratio",
        title="Missing",
    ),
    DriftStatistic("reference_missing_ratio", BOTH, json_key="reference_missing_ratio", metric=None, title=None),
    # The verdict's own number: the smallest level at which the rule flags the column (1 when
    # no statistic passes its effect-size threshold); the model flags it when this is at most
    # its family-wise level (detectors.familywise).
    DriftStatistic(
        "drift_pvalue", BOTH, json_key="drift_pvalue", metric="model_health_feature_drift_pvalue", title="Drift p"
    ),
)

BY_ATTRIBUTE: MappingProxyType[str, DriftStatistic] = MappingProxyType({s.attribute: s for s in DRIFT_STATISTICS})

# The statistics the decision rule gates on, by method name, and how it gates on each.
DECISION_METHODS: MappingProxyType[str, DriftStatistic] = MappingProxyType(
    {s.decision.method: s for s in DRIFT_STATISTICS if s.decision is not None}
)
DECISIONS: MappingProxyType[str, Decision] = MappingProxyType(
    {s.decision.method: s.decision for s in DRIFT_STATISTICS if s.decision is not None}
)


def methods_for(kind: Kind) -> tuple[str, ...]:
    """The decision methods that apply to a column kind, in table order.

    >>> methods_for("numeric"), methods_for("categorical")
    (('psi', 'ks'), ('psi', 'js'))
    """
    return tuple(method for method, s in DECISION_METHODS.items() if s.applies_to(kind))


def decision_inputs(kind: Kind, values: Mapping[str, Any]) -> dict[str, float]:
    """The rule's input for a column: method name → value, from statistic values by attribute.

    >>> decision_inputs("categorical", {"psi": 0.3, "js_distance": 0.2, "chi2_pvalue": 0.01})
    {'psi': 0.3, 'js': 0.2}
    """
    return {method: values[s.attribute] for method, s in DECISION_METHODS.items() if s.applies_to(kind)}
