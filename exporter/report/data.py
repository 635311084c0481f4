"""The drift report as plain data: what the page shows, built without I/O.

Two ways in, one result:

* :func:`feature_from_summaries` — a reference and a current summary over the same frozen
  bins and their :class:`~detectors.compare.ColumnDrift` (the streaming path: the
  aggregator's window snapshot, or the offline command with ``--binning reference``).
  Numeric fine histograms are regrouped into a readable number of equal-width bars, the
  open tails kept as bars of their own; categorical bars are the reference's top-K,
  ``__other__``, and current values known to be unseen in the reference.
* :func:`feature_from_values` — present raw values and their ``ColumnDrift`` in Evidently
  mode: the bars are the very bins Evidently's PSI was computed on.

:class:`ReportData` gathers the features (drifted first), the prediction and label
distributions, performance blocks and the decision rule. Its :meth:`ReportData.as_dict`
is the ``model-health drift --format json`` object plus extra keys (``chart``,
``statistics``, ``rule``, …), so the page's data and the JSON API are one thing.

Only bins, shares and statistics live here: never a record, a request id or a raw value
beyond bin boundaries and category names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from detectors.binning import OTHER
from detectors.compare import ColumnDrift
from detectors.decision import DriftRule
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary

DEFAULT_BARS = 30
"""About how many equal-width bars a numeric chart gets (fine bins are regrouped into them)."""
MAX_CATEGORY_BARS = 30
"""At most this many category bars; the rest of the values are shown as ``__other__``."""
MAX_UNSEEN_BARS = 10
"""At most this many current values unseen in the reference get a bar of their own."""

BarRole = Literal["bin", "lower_tail", "upper_tail", "clipped_low", "clipped_high", "category", "other", "unseen"]

# Statistic key (as in ColumnDrift.as_dict) → (label on the page, the decision method it
# measures or None). Only public ColumnDrift attributes are read.
_NUMERIC_STATISTICS: tuple[tuple[str, str, str | None], ...] = (
    ("psi", "PSI", "psi"),
    ("ks_statistic", "KS D", "ks"),
    ("ks_pvalue", "KS p-value", None),
    ("wasserstein_normed", "Wasserstein (normalised)", None),
)
_CATEGORICAL_STATISTICS: tuple[tuple[str, str, str | None], ...] = (
    ("psi", "PSI", "psi"),
    ("js_distance", "Jensen–Shannon", "js"),
    ("chi2_pvalue", "χ² p-value", None),
)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _round(values: np.ndarray | Sequence[float], digits: int = 6) -> tuple[float, ...]:
    """Shares for the page: six significant digits keep 100 charts small."""
    out = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(0.0 if v == 0 or not math.isfinite(v) else float(f"{v:.{digits}g}"))
    return tuple(out)


def format_number(value: float) -> str:
    """A bin boundary for an axis label: short, and exact enough to tell bars apart.

    >>> [format_number(v) for v in (0.0, 1234567.0, 0.000123, 12.5, -3.25, 100.0)]
    ['0', '1.23e+06', '0.000123', '12.5', '-3.25', '100']
    """
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-4:
        return f"{value:.3g}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Chart:
    """Bars of one distribution pair: shares of present values, reference and current.

    ``lower``/``upper`` are each numeric bar's boundaries (None where a tail is open);
    categorical charts leave them empty. ``basis`` says how the bars were made.
    """

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    roles: tuple[BarRole, ...]
    basis: str
    lower: tuple[float | None, ...] = ()
    upper: tuple[float | None, ...] = ()
    ticks: tuple[tuple[float, str], ...] = ()
    """Numeric charts: axis ticks as (position, text); bar ``i`` spans ``i - 0.5 … i + 0.5``."""

    def __post_init__(self) -> None:
        sizes = {len(self.labels), len(self.reference), len(self.current), len(self.roles)}
        if len(sizes) != 1 or (self.lower and len(self.lower) != len(self.labels)):
            raise ValueError("a chart needs one label, role and share pair per bar")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "basis": self.basis,
            "labels": list(self.labels),
            "reference": list(self.reference),
            "current": list(self.current),
            "roles": list(self.roles),
        }
        if self.lower:
            out["lower"] = list(self.lower)
            out["upper"] = list(self.upper)
        if self.ticks:
            out["ticks"] = [[position, text] for position, text in self.ticks]
        return out


@dataclass(frozen=True)
class Statistic:
    """One statistic as shown: its value, its threshold (None where the rule has none),
    whether the value crossed the threshold, and whether its method fired (crossed *and*
    beyond its null quantile with enough samples)."""

    key: str
    label: str
    value: float | None
    threshold: float | None
    crossed: bool
    fired: bool


def statistics_of(drift: ColumnDrift, rule: DriftRule) -> tuple[Statistic, ...]:
    table = _NUMERIC_STATISTICS if drift.kind == "numeric" else _CATEGORICAL_STATISTICS
    methods = rule.numeric_methods if drift.kind == "numeric" else rule.categorical_methods
    out = []
    for key, label, method in table:
        value = _finite_or_none(getattr(drift, key, None))
        threshold = rule.threshold(method) if method is not None and method in methods else None
        crossed = threshold is not None and value is not None and value >= threshold
        out.append(Statistic(key, label, value, threshold, crossed, method is not None and method in drift.fired))
    return tuple(out)


@dataclass(frozen=True)
class FeatureReport:
    """One column's section of the page: its chart, statistics and verdict."""

    name: str
    drift: ColumnDrift
    chart: Chart
    statistics: tuple[Statistic, ...]

    @property
    def kind(self) -> str:
        return self.drift.kind

    @property
    def crossed(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.statistics if s.crossed)

    def as_dict(self) -> dict[str, Any]:
        """``ColumnDrift.as_dict()`` (the JSON contract) plus ``chart``, ``thresholds``, ``crossed``."""
        out = self.drift.as_dict()
        out["thresholds"] = {s.key: s.threshold for s in self.statistics if s.threshold is not None}
        out["crossed"] = list(self.crossed)
        out["chart"] = self.chart.as_dict()
        return out


def _severity(feature: FeatureReport) -> tuple[bool, float]:
    psi = feature.drift.psi
    return (not feature.drift.drift, -(psi if math.isfinite(psi) else -1.0))


def ordered(features: Mapping[str, FeatureReport]) -> list[FeatureReport]:
    """Drifted first, then by PSI, largest first (as the terminal table orders them)."""
    return sorted(features.values(), key=_severity)


@dataclass(frozen=True)
class ReportData:
    """Everything the drift report page shows, for one model and window (or two files).

    ``extra`` carries keys of the drift JSON that this model does not interpret (for
    example ``performance_estimated``); they come back unchanged in :meth:`as_dict`.
    ``performance`` maps a metric to ``{"reference": …, "current": …}``.
    """

    reference_rows: int
    current_rows: int
    features: dict[str, FeatureReport]
    rule: DriftRule = DriftRule()
    binning: str = "reference"
    reference_kind: str = "profile"
    model: str | None = None
    model_version: str | None = None
    window: str | None = None
    title: str | None = None
    prediction: FeatureReport | None = None
    label: FeatureReport | None = None
    performance: dict[str, dict[str, float | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    evaluated_at: float | None = None
    """The live report: when the aggregator evaluated the window (Unix seconds)."""

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in ordered(self.features) if f.drift.drift]

    @property
    def ordered_features(self) -> list[FeatureReport]:
        return ordered(self.features)

    @property
    def performance_estimated(self) -> dict[str, Any] | None:
        value = self.extra.get("performance_estimated")
        return value if isinstance(value, dict) and value else None

    def rule_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "psi_threshold": r.psi_threshold,
            "ks_threshold": r.ks_threshold,
            "js_threshold": r.js_threshold,
            "alpha": r.alpha,
            "min_samples": r.min_samples,
            "numeric_methods": list(r.numeric_methods),
            "categorical_methods": list(r.categorical_methods),
        }

    def as_dict(self) -> dict[str, Any]:
        """The ``drift --format json`` object, with extra keys for the page."""
        drifted = len(self.drifted)
        out: dict[str, Any] = {
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "binning": self.binning,
            "reference_kind": self.reference_kind,
            "drifted_features": drifted,
            "drifted_features_ratio": drifted / len(self.features) if self.features else 0.0,
            "features": {name: feature.as_dict() for name, feature in self.features.items()},
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        out["rule"] = self.rule_dict()
        for key, value in (
            ("model", self.model),
            ("model_version", self.model_version),
            ("window", self.window),
            ("evaluated_at", self.evaluated_at),
        ):
            if value is not None:
                out[key] = value
        for role, feature in (("prediction", self.prediction), ("label", self.label)):
            if feature is not None:
                out[role] = feature.as_dict()
        if self.performance:
            out["performance"] = self.performance
        return out


# --- numeric charts from fine histograms ------------------------------------------------


def _nice_step(span: float, bars: int) -> float:
    """A 1-2-2.5-5 × 10^k step giving about ``bars`` bars over ``span``."""
    raw = span / max(bars, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * magnitude * (1 + 1e-9):
            return factor * magnitude
    return 10.0 * magnitude


def _quantile(edges: np.ndarray, cumulative: np.ndarray, q: float) -> float:
    """The ``q`` quantile of fine counts spread evenly inside each bin."""
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    # Flat stretches (empty bins) would make the inverse ambiguous: keep each level's first edge.
    levels, first = np.unique(cumulative, return_index=True)
    return float(np.interp(q * total, levels, edges[first]))


def _interval(left: float, right: float) -> str:
    return f"[{format_number(left)}, {format_number(right)})"


def _boundary_ticks(positions: list[float], values: list[float], step: float, most: int = 9) -> list[tuple[float, str]]:
    """Label every k-th boundary, k chosen so at most ``most`` show, on multiples of k·step."""
    if not positions:
        return []
    k = 1
    while len(positions) / k > most:
        k += 1
    out = []
    for position, value in zip(positions, values):
        multiple = round(value / step)
        if multiple % k == 0:
            out.append((position, format_number(round(value / step) * step)))
    return out


def numeric_chart(reference: NumericSummary, current: NumericSummary, bars: int = DEFAULT_BARS) -> Chart:
    """Regroup two fine histograms into about ``bars`` equal-width bars plus the open tails.

    Fine bins are reference quantiles, so their mass is spread evenly inside each when a
    bar boundary cuts one (the error is at most one fine bin's mass per boundary). With
    no more fine bins than ``bars`` inside the range (few distinct values), each fine bin
    that holds values is a bar of its own, its tick at its left edge. A long-tailed reference would squeeze
    the bulk into one bar: when the central 99% of both sides spans less than half the
    reference range, the equal-width bars cover that span and two ``clipped`` bars hold
    the rest of the reference range. Bar ``0`` is the open lower tail (below the
    reference minimum), the last bar the open upper tail (above the reference maximum).
    """
    bins = reference.bins
    edges = bins.edges.astype(np.float64)
    ref_counts = reference.counts.astype(np.float64)
    cur_counts = current.counts.astype(np.float64)
    ref_total, cur_total = max(ref_counts.sum(), 1.0), max(cur_counts.sum(), 1.0)
    lo, hi = float(edges[0]), float(edges[-1])
    ref_max = reference.maximum if math.isfinite(reference.maximum) else hi

    labels: list[str] = []
    roles: list[BarRole] = []
    lower: list[float | None] = []
    upper: list[float | None] = []
    ref_mass: list[float] = []
    cur_mass: list[float] = []
    ticks: list[tuple[float, str]] = []

    def add(label: str, role: BarRole, left: float | None, right: float | None, r: float, c: float) -> None:
        labels.append(label)
        roles.append(role)
        lower.append(left)
        upper.append(right)
        ref_mass.append(float(r))
        cur_mass.append(float(c))

    add(f"< {format_number(lo)} (below the reference minimum)", "lower_tail", None, lo, ref_counts[0], cur_counts[0])
    ticks.append((0.0, f"< {format_number(lo)}"))
    inner = edges.size - 1  # fine bins between the tails
    if inner <= bars:
        # Few distinct reference values: a fine bin per value (quantile interpolation leaves
        # empty bins between them, shown only where the current has values).
        basis = "fine bins, one bar each"
        for i in range(inner):
            if ref_counts[i + 1] == 0 and cur_counts[i + 1] == 0:
                continue
            left, right = float(edges[i]), float(edges[i + 1])
            add(_interval(left, right), "bin", left, right, ref_counts[i + 1], cur_counts[i + 1])
            ticks.append((float(len(labels) - 1), format_number(left)))
    else:
        basis = "fine bins regrouped into equal-width bars"
        # Cumulative counts at each edge, tails left out: values < edges[k] inside the range.
        ref_cum = np.concatenate(([0.0], np.cumsum(ref_counts[1:-1])))
        cur_cum = np.concatenate(([0.0], np.cumsum(cur_counts[1:-1])))
        start, stop = lo, hi
        spans = [(_quantile(edges, cum, 0.005), _quantile(edges, cum, 0.995)) for cum in (ref_cum, cur_cum) if cum[-1]]
        if spans:
            central_lo, central_hi = min(s[0] for s in spans), max(s[1] for s in spans)
            if central_hi > central_lo and central_hi - central_lo < 0.5 * (hi - lo):
                start, stop = central_lo, central_hi
        step = _nice_step(stop - start, bars)
        first = math.floor(start / step) * step
        count = max(1, math.ceil((stop - first) / step - 1e-9))
        bounds = first + step * np.arange(count + 1)
        clipped_low, clipped_high = bool(bounds[0] > lo), bool(bounds[-1] < hi)
        if clipped_low:
            bounds = np.concatenate(([lo], bounds))
        if clipped_high:
            bounds = np.concatenate((bounds, [hi]))
        ref_bars = np.diff(np.interp(np.clip(bounds, lo, hi), edges, ref_cum))
        cur_bars = np.diff(np.interp(np.clip(bounds, lo, hi), edges, cur_cum))
        last = bounds.size - 2
        positions: list[float] = []
        values: list[float] = []
        for j in range(bounds.size - 1):
            left, right = float(bounds[j]), float(bounds[j + 1])
            if j == 0 and clipped_low:
                role: BarRole = "clipped_low"
                label = f"{_interval(lo, right)} (the reference's long lower tail)"
            elif j == last and clipped_high:
                role = "clipped_high"
                label = f"[{format_number(left)}, {format_number(ref_max)}] (the reference's long upper tail)"
            else:
                role, label = "bin", _interval(left, right)
            add(label, role, left, right, ref_bars[j], cur_bars[j])
            if j > 0:
                positions.append(len(labels) - 1.5)
                values.append(left)
        if not clipped_low:
            positions.insert(0, 0.5)
            values.insert(0, float(bounds[0]))
        if not clipped_high:
            positions.append(len(labels) - 0.5)
            values.append(float(bounds[-1]))
        ticks.extend(_boundary_ticks(positions, values, step))
    add(
        f"> {format_number(ref_max)} (above the reference maximum)",
        "upper_tail",
        hi,
        None,
        ref_counts[-1],
        cur_counts[-1],
    )
    ticks.append((float(len(labels) - 1), f"> {format_number(ref_max)}"))
    return Chart(
        tuple(labels),
        _round(np.asarray(ref_mass) / ref_total),
        _round(np.asarray(cur_mass) / cur_total),
        tuple(roles),
        basis,
        tuple(None if v is None else float(v) for v in lower),
        tuple(None if v is None else float(v) for v in upper),
        tuple(ticks),
    )


# --- categorical charts -------------------------------------------------------------------


def categorical_chart(
    labels: Sequence[str],
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    roles: Sequence[BarRole],
    basis: str,
    limit: int = MAX_CATEGORY_BARS,
) -> Chart:
    """Bars for categories; past ``limit``, the least prominent categories join ``__other__``."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    ref_total, cur_total = max(ref.sum(), 1.0), max(cur.sum(), 1.0)
    ref_share, cur_share = ref / ref_total, cur / cur_total
    role_list = list(roles)
    named = [i for i, role in enumerate(role_list) if role != "other"]
    if len(named) > limit:
        prominence = np.maximum(ref_share, cur_share)
        keep = set(sorted(named, key=lambda i: (-prominence[i], labels[i]))[:limit])
        kept = [i for i in range(len(role_list)) if i in keep]
        dropped = [i for i in named if i not in keep] + [i for i, role in enumerate(role_list) if role == "other"]
        out_labels = [labels[i] for i in kept] + [OTHER]
        out_ref = np.append(ref_share[kept], ref_share[dropped].sum())
        out_cur = np.append(cur_share[kept], cur_share[dropped].sum())
        out_roles: list[BarRole] = [role_list[i] for i in kept] + ["other"]
        return Chart(tuple(out_labels), _round(out_ref), _round(out_cur), tuple(out_roles), basis)
    return Chart(tuple(labels), _round(ref_share), _round(cur_share), tuple(role_list), basis)


def summary_categorical_chart(
    reference: CategoricalSummary, current: CategoricalSummary, unseen: Mapping[str, int] | None = None
) -> Chart:
    """Top-K categories and ``__other__``; ``unseen`` (current values known to be absent
    from the reference, with their counts) are split out of the current ``__other__``."""
    names = list(reference.bins.categories)
    ref_counts = reference.counts[:-1].astype(np.float64)
    cur_counts = current.counts[:-1].astype(np.float64)
    roles: list[BarRole] = ["category"] * len(names)
    other_cur = float(current.counts[-1])
    new = sorted((unseen or {}).items(), key=lambda item: (-item[1], item[0]))
    shown = [(n, c) for n, c in new if c > 0 and n not in reference.bins.categories][:MAX_UNSEEN_BARS]
    for name, count in shown:
        names.append(name)
        ref_counts = np.append(ref_counts, 0.0)
        cur_counts = np.append(cur_counts, float(count))
        roles.append("unseen")
        other_cur -= count
    names.append(OTHER)
    ref_counts = np.append(ref_counts, float(reference.counts[-1]))
    cur_counts = np.append(cur_counts, max(other_cur, 0.0))
    roles.append("other")
    return categorical_chart(names, ref_counts, cur_counts, roles, "reference top-K categories")


# --- the two ways in ----------------------------------------------------------------------


def feature_from_summaries(
    name: str,
    reference: ColumnSummary,
    current: ColumnSummary,
    drift: ColumnDrift,
    rule: DriftRule = DriftRule(),
    unseen: Mapping[str, int] | None = None,
    bars: int = DEFAULT_BARS,
) -> FeatureReport:
    """A feature's section from two summaries over the same bins (the streaming path)."""
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        chart = numeric_chart(reference, current, bars)
    elif isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalSummary):
        chart = summary_categorical_chart(reference, current, unseen)
    else:
        raise TypeError(f"{name!r}: reference and current summaries must be of the same kind")
    return FeatureReport(name, drift, chart, statistics_of(drift, rule))


def evidently_numeric_chart(reference: np.ndarray, current: np.ndarray) -> Chart:
    """Evidently 0.7's PSI bins: Sturges equal-width edges over both sides when the
    reference has more than 20 distinct values, else one bar per value."""
    ref, cur = np.sort(np.asarray(reference)), np.sort(np.asarray(current))
    if ref.size == 0 or cur.size == 0:
        return Chart((), (), (), (), "Evidently bins (no values)")
    both = np.concatenate([ref, cur])
    if np.unique(ref).size > 20:
        edges = np.histogram_bin_edges(both, bins="sturges").astype(np.float64)
        ref_counts = np.histogram(ref, edges)[0]
        cur_counts = np.histogram(cur, edges)[0]
        left, right = edges[:-1], edges[1:]
        labels = tuple(format_number(v) for v in left)
        basis = "Evidently bins (Sturges, equal width over both sides)"
    else:
        keys, inverse = np.unique(both, return_inverse=True)
        inverse = inverse.ravel()
        ref_counts = np.bincount(inverse[: ref.size], minlength=keys.size)
        cur_counts = np.bincount(inverse[ref.size :], minlength=keys.size)
        left = right = keys.astype(np.float64)
        labels = tuple(format_number(float(v)) for v in keys)
        basis = "Evidently bins (one per value)"
    return Chart(
        labels,
        _round(ref_counts / ref.size),
        _round(cur_counts / cur.size),
        tuple("bin" for _ in labels),
        basis,
        tuple(float(v) for v in left),
        tuple(float(v) for v in right),
    )


def feature_from_values(
    name: str,
    reference_values: np.ndarray,
    current_values: np.ndarray,
    drift: ColumnDrift,
    rule: DriftRule = DriftRule(),
) -> FeatureReport:
    """A feature's section in Evidently mode, from present values (missing ones dropped)."""
    if drift.kind == "numeric":
        return FeatureReport(
            name, drift, evidently_numeric_chart(reference_values, current_values), statistics_of(drift, rule)
        )
    ref_names, ref_counts = np.unique(np.asarray(reference_values).astype(str), return_counts=True)
    cur_names, cur_counts = np.unique(np.asarray(current_values).astype(str), return_counts=True)
    return feature_from_category_counts(
        name, ref_names.tolist(), ref_counts.tolist(), cur_names.tolist(), cur_counts.tolist(), drift, rule
    )


def feature_from_category_counts(
    name: str,
    reference_names: Sequence[str],
    reference_counts: Sequence[int],
    current_names: Sequence[str],
    current_counts: Sequence[int],
    drift: ColumnDrift,
    rule: DriftRule = DriftRule(),
) -> FeatureReport:
    """A categorical feature in Evidently mode, from the distinct values of each side and
    their counts: one bar per value, most common in the reference first, then values only
    the current has (``unseen``)."""
    ref = dict(zip(reference_names, reference_counts))
    cur = dict(zip(current_names, current_counts))
    keys = sorted(set(ref) | set(cur), key=lambda k: (-ref.get(k, 0), -cur.get(k, 0), k))
    roles: list[BarRole] = ["category" if ref.get(k, 0) else "unseen" for k in keys]
    chart = categorical_chart(
        keys,
        np.array([ref.get(k, 0) for k in keys], dtype=np.float64),
        np.array([cur.get(k, 0) for k in keys], dtype=np.float64),
        roles,
        "Evidently bins (one per value, both sides)",
    )
    return FeatureReport(name, drift, chart, statistics_of(drift, rule))
