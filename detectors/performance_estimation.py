"""Estimated performance without labels: confidence-based estimation over score histograms.

When labels arrive late (or never), a classifier's performance can still be estimated from
its scores, provided the scores can be turned into calibrated probabilities and the relation
between score and outcome has not changed (covariate shift, not concept shift). NannyML calls
this CBPE; this module does the same over the mergeable fine histograms the aggregator already
keeps, so an estimate is a function of a window's summed counts and nothing else.

Method (binary; ``docs/performance-estimation.md`` has the derivations and the proof)
-------------------------------------------------------------------------------------

1. **Calibration**, fitted once on the labelled reference: an isotonic regression of the
   label (1 for the positive class) on the score, by pool-adjacent-violators over the distinct
   scores, interpolated linearly between them and held constant beyond the fitted range
   (:class:`CalibrationMap`).
2. **Binned tables**, also fitted on the reference, over the fine bins of the prediction
   column (:class:`BinnedCalibration`): for each fine bin ``b`` the mean calibrated
   probability ``q_b`` of the reference scores in it, the share ``a_b`` of them at or above
   the decision threshold (0 or 1 except in the one bin that straddles it) and the mean of
   ``q·[s ≥ threshold]``, ``t_b``. A window's scores in bin ``b`` are taken to look like the
   reference's scores in that bin; with 1,000 reference-quantile bins that is exact for
   discrete scores and within a bin's width otherwise.
3. **Expected confusion matrix** of a window with fine counts ``c_b``::

       TP = Σ c_b·t_b    predicted positive PP = Σ c_b·a_b    positives P = Σ c_b·q_b
       FP = PP − TP      FN = P − TP      TN = n − PP − FN

   hence accuracy ``(TP + TN)/n``, precision ``TP/PP``, recall ``TP/P`` and F1
   ``2·TP/(PP + P)`` (0.0 where a denominator is 0, as :mod:`detectors.performance`).
4. **Expected ROC AUC**: the Mann–Whitney count with expected positives ``P_b = c_b·q_b``
   and negatives ``N_b = c_b·(1 − q_b)`` per bin, pairs within one bin counted ½::

       AUC = Σ_b N_b·(Σ_{b' > b} P_b' + P_b/2) / (P·N)

5. **Standard errors** by the delta method: each estimate is a smooth function ``f(π)`` of
   the window's bin shares ``π = c/n``, and a stationary window's counts are multinomial
   around the reference shares, so ``Var f(π̂) ≈ Σ_b π_b·IF_b² / n`` with ``IF`` the
   influence function of ``f`` at the reference. ``σ = sqrt(Σ π_b IF_b²)`` is computed once,
   at fit time, and a window of ``n`` scored records gets ``stderr = σ/√n``. This is the
   spread of the *estimate* across stationary windows, the noise the alert rule must ride
   out; the realised metric scatters more around it (its labels are random too), which is
   what NannyML's sampling error describes.

Multiclass (one-vs-rest) works over per-class score histograms: for each class ``k`` the
histogram of ``score_k`` over all records and over the records predicted ``k``
(:class:`ClassScores`), each with its own isotonic map (``score_k`` → P(y = k)). Then
``TP_k = Σ c^pred_k·q_k``, ``P_k = Σ c^all_k·q_k``, ``PP_k = Σ c^pred_k``, accuracy is
``Σ_k TP_k / n``, precision, recall and F1 are macro averages and ROC AUC is the macro
average of the one-vs-rest expected AUCs. Marginal histograms cannot renormalise each
record's calibrated probabilities to sum to one, as NannyML does record by record; the
difference is one of the stated limits.

API
---

Fitting (``detectors.profile.build_profile`` calls these for a score prediction with labels):

* :func:`fit_binary_calibration` ``(bins, scores, is_positive, threshold=0.5, positive="1")``
  → :class:`BinaryCalibration`: the map, the binned tables over ``bins`` (the prediction
  column's fine bins), the reference's estimated metrics and the per-metric ``σ``.
* :func:`fit_multiclass_calibration` ``(bins_by_class, scores_by_class, labels, predicted)``
  → :class:`MulticlassCalibration`.
* :func:`calibration_to_json` / :func:`calibration_from_json`: how a profile stores either.

Estimating (pure functions of the profile and a window's summaries):

* :func:`estimate_performance` ``(profile, prediction_summary)`` →
  :class:`EstimatedPerformance` with ``metrics`` and ``stderr`` (dicts keyed ``roc_auc``,
  ``accuracy``, ``precision``, ``recall``, ``f1``), ``count`` and the expected confusion
  counts. ``prediction_summary`` is the window's :class:`~detectors.summary.NumericSummary`
  of the score column (binary) or its :class:`ClassScores` (multiclass).
  ``estimate_performance(p, a + b) == estimate_performance(p, NumericSummary.sum([a, b]))``:
  windows merge before estimating.
* :func:`reference_estimate` ``(profile)``: the same estimate for the reference itself, with
  the reference's (small) standard errors.
* :func:`performance_dropped` ``(estimate, reference, rule=DropRule())`` → per metric, whether
  ``reference − estimate > max(k·sqrt(se² + se_ref²), min_drop)`` on a window of at least
  ``min_samples``; the default ``k = 3`` keeps one metric's false-alarm rate near the
  one-sided normal 0.13 % (``benchmarks/performance_estimation.py`` measures it).
* :meth:`EstimatedPerformance.as_dict` is the ``"performance_estimated"`` object of
  ``drift --format json``; :meth:`EstimatedPerformance.band` gives ``estimate ± k·stderr``.

>>> from detectors.binning import NumericBins
>>> from detectors.summary import NumericSummary
>>> rng = np.random.default_rng(0)
>>> scores = rng.uniform(size=20_000)
>>> labels = rng.uniform(size=scores.size) < scores  # calibrated: P(y = 1 | s) = s
>>> bins = NumericBins.from_reference(scores)
>>> cal = fit_binary_calibration(bins, scores, labels)
>>> window = NumericSummary.fold(bins, rng.uniform(0.5, 1.0, size=5_000))  # confident positives
>>> est = estimate_binary(cal, window)
>>> round(est.metrics["accuracy"], 2), round(est.metrics["precision"], 2), est.count
(0.75, 0.75, 5000)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from detectors.binning import NumericBins
from detectors.summary import NumericSummary

if TYPE_CHECKING:  # the profile imports this module to fit; this one only reads profiles
    from detectors.profile import ReferenceProfile

DEFAULT_THRESHOLD = 0.5
METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
CALIBRATION_FORMAT = 1

# --------------------------------------------------------------------------- calibration map


def pool_adjacent_violators(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares.

    Pools each run of values that violates the order into its weighted mean, left to
    right, with a stack of blocks (sums, not means, so pooling does not accumulate
    rounding). Pure Python: the fallback where scipy lacks ``isotonic_regression``.

    >>> pool_adjacent_violators(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4)).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    sums: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(np.asarray(y, dtype=np.float64).tolist(), np.asarray(weights, dtype=np.float64).tolist()):
        s, w, size = value * weight, weight, 1
        while sums and sums[-1] * w > s * totals[-1]:  # previous block's mean above this one's
            s += sums.pop()
            w += totals.pop()
            size += sizes.pop()
        sums.append(s)
        totals.append(w)
        sizes.append(size)
    return np.repeat(np.array(sums) / np.array(totals), sizes)


def _isotonic(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    # Imported here, where a calibration is fitted: scipy.optimize is a tenth of a second
    # that reading a profile (every ``model-health drift`` against one) does not need.
    try:  # scipy >= 1.12 has a C implementation of pool-adjacent-violators
        from scipy.optimize import isotonic_regression
    except ImportError:  # pragma: no cover - older scipy: the pure-Python one above
        return pool_adjacent_violators(y, weights)
    return np.asarray(isotonic_regression(y, weights=weights, increasing=True).x, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class CalibrationMap:
    """A non-decreasing piecewise-linear map from score to calibrated probability.

    ``map(s) = np.interp(s, x, y)``: linear between knots, constant beyond the first and
    the last (isotonic regression with out-of-bounds clipping, as scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip")`` predicts).

    >>> m = CalibrationMap.fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    >>> m.x.tolist(), m.y.tolist()
    ([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
    >>> m(np.array([0.0, 0.15, 0.35, 2.0])).round(12).tolist()
    [0.0, 0.25, 0.75, 1.0]
    """

    x: np.ndarray  # strictly increasing knots
    y: np.ndarray  # non-decreasing values in [0, 1]
    method: str = "isotonic"

    def __post_init__(self) -> None:
        if self.x.ndim != 1 or self.x.shape != self.y.shape or self.x.size == 0:
            raise ValueError("a calibration map needs matching, non-empty knot arrays")
        if self.x.size > 1 and not (np.all(np.diff(self.x) > 0) and np.all(np.diff(self.y) >= 0)):
            raise ValueError("calibration knots must be strictly increasing with non-decreasing values")

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    @classmethod
    def identity(cls) -> CalibrationMap:
        """Scores already are probabilities (clipped into [0, 1])."""
        return cls(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "identity")

    @classmethod
    def fit_isotonic(cls, scores: np.ndarray, is_positive: np.ndarray) -> CalibrationMap:
        """Isotonic regression of ``is_positive`` (0/1) on ``scores``; non-finite scores are dropped.

        Tied scores are pooled first (their mean outcome, weighted by their number), then
        pool-adjacent-violators runs over the distinct scores. Only the ends of each
        constant run are kept as knots: interpolating between them is the same function.
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        y = np.asarray(is_positive, dtype=np.float64).ravel()
        if s.size != y.size:
            raise ValueError(f"{s.size} scores but {y.size} outcomes")
        finite = np.isfinite(s)
        s, y = s[finite], y[finite]
        if s.size == 0:
            raise ValueError("cannot calibrate without finite scores")
        order = np.argsort(s, kind="stable")
        s, y = s[order], y[order]
        distinct, starts, counts = np.unique(s, return_index=True, return_counts=True)
        means = np.add.reduceat(y, starts) / counts
        fitted = np.clip(_isotonic(means, counts.astype(np.float64)), 0.0, 1.0)
        fitted = np.maximum.accumulate(fitted)  # guard the order against last-bit rounding
        keep = np.ones(distinct.size, dtype=bool)
        if distinct.size > 2:
            flat_left = fitted[1:-1] == fitted[:-2]
            flat_right = fitted[1:-1] == fitted[2:]
            keep[1:-1] = ~(flat_left & flat_right)
        return cls(distinct[keep], fitted[keep])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationMap:
        return cls(np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.float64), str(d["method"]))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CalibrationMap)
            and self.method == other.method
            and np.array_equal(self.x, other.x)
            and np.array_equal(self.y, other.y)
        )

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- binned tables


def _bin_points(bins: NumericBins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left edge, right edge and a representative point of every fine bin (tails: their edge)."""
    e = bins.edges
    left = np.concatenate(([e[0]], e))
    right = np.concatenate((e, [e[-1]]))
    point = np.concatenate(([e[0]], (e[:-1] + e[1:]) / 2, [e[-1]]))
    return left, right, point


@dataclass(frozen=True, eq=False)
class BinnedCalibration:
    """Per fine bin of a score column, what the reference's scores in it say about outcomes.

    ``positive[b]``: mean calibrated P(positive); ``predicted[b]``: share at or above the
    threshold; ``true_positive[b]``: mean of P(positive)·[score ≥ threshold]. A bin the
    reference left empty (the open tails, and interior bins between interpolated
    quantiles) takes the map at its midpoint (tails: at their edge, where the isotonic map
    is flat anyway) and the share of its width at or above the threshold.
    """

    positive: np.ndarray
    predicted: np.ndarray
    true_positive: np.ndarray

    def __post_init__(self) -> None:
        if not (self.positive.shape == self.predicted.shape == self.true_positive.shape):
            raise ValueError("binned calibration arrays must have one value per fine bin")

    @property
    def n_bins(self) -> int:
        return int(self.positive.size)

    @classmethod
    def from_reference(
        cls, bins: NumericBins, scores: np.ndarray, calibration: CalibrationMap, threshold: float = DEFAULT_THRESHOLD
    ) -> BinnedCalibration:
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = s[np.isfinite(s)]
        index = bins.fine_index(s)
        n_bins = bins.n_fine
        counts = np.bincount(index, minlength=n_bins).astype(np.float64)
        q = calibration(s)
        above = (s >= threshold).astype(np.float64)
        seen = counts > 0
        safe = np.where(seen, counts, 1.0)
        positive = np.bincount(index, weights=q, minlength=n_bins) / safe
        predicted = np.bincount(index, weights=above, minlength=n_bins) / safe
        true_positive = np.bincount(index, weights=q * above, minlength=n_bins) / safe
        left, right, point = _bin_points(bins)
        width = right - left  # 0 for the two tails
        share = (point >= threshold).astype(np.float64)
        straddles = (width > 0) & (left < threshold) & (threshold < right)
        share[straddles] = (right[straddles] - threshold) / width[straddles]
        fallback_q = calibration(point)
        positive = np.where(seen, positive, fallback_q)
        predicted = np.where(seen, predicted, share)
        true_positive = np.where(seen, true_positive, share * fallback_q)
        return cls(positive, predicted, true_positive)

    def to_dict(self) -> dict[str, Any]:
        return {
            "positive": self.positive.tolist(),
            "predicted": self.predicted.tolist(),
            "true_positive": self.true_positive.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BinnedCalibration:
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("positive", "predicted", "true_positive")))


# --------------------------------------------------------------------------- binary estimate


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def _expected_auc_parts(counts: np.ndarray, q: np.ndarray) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """(U, P, N, positives strictly above + ½ own, negatives strictly below + ½ own) per bin."""
    pos = counts * q
    neg = counts - pos
    p_total, n_total = float(pos.sum()), float(neg.sum())
    pos_above = (p_total - np.cumsum(pos)) + pos / 2
    neg_below = (np.cumsum(neg) - neg) + neg / 2
    u = float(neg @ pos_above)
    return u, p_total, n_total, pos_above, neg_below


def _expected_auc(counts: np.ndarray, q: np.ndarray) -> float:
    u, p_total, n_total, _, _ = _expected_auc_parts(counts, q)
    if p_total <= 0 or n_total <= 0:
        return float("nan")
    return min(max(u / (p_total * n_total), 0.0), 1.0)


def _auc_influence(shares: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Influence function of the expected AUC at bin shares ``shares``, one value per bin."""
    u, p, n, pos_above, neg_below = _expected_auc_parts(shares, q)
    if p <= 0 or n <= 0:
        return np.full(q.shape, np.nan)
    auc = u / (p * n)
    # U is quadratic in the shares: its derivative towards bin b is (M + Mᵀ)π at b, minus 2U.
    influence_u = (1 - q) * pos_above + q * neg_below - 2 * u
    return influence_u / (p * n) - auc * (q - p) * (1 / p - 1 / n)


def _binary_point(table: BinnedCalibration, counts: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics and expected confusion counts of a window with fine ``counts``."""
    c = np.asarray(counts, dtype=np.float64)
    n = float(c.sum())
    if n <= 0:
        return dict.fromkeys(METRICS, float("nan")), dict.fromkeys(("tp", "fp", "fn", "tn"), float("nan"))
    tp = float(c @ table.true_positive)
    pp = float(c @ table.predicted)
    p = float(c @ table.positive)
    fp, fn = pp - tp, p - tp
    tn = n - pp - fn
    metrics = {
        "roc_auc": _expected_auc(c, table.positive),
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, pp),
        "recall": _ratio(tp, p),
        "f1": _ratio(2 * tp, pp + p),
    }
    return metrics, {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _binary_sigma(table: BinnedCalibration, counts: np.ndarray) -> dict[str, float]:
    """σ per metric: sqrt(Σ π_b·IF_b²) at the bin shares of ``counts`` (the reference's)."""
    c = np.asarray(counts, dtype=np.float64)
    n = float(c.sum())
    if n <= 0:
        return dict.fromkeys(METRICS, float("nan"))
    pi = c / n
    q, a, t = table.positive, table.predicted, table.true_positive
    pp, p = float(pi @ a), float(pi @ q)
    point, _ = _binary_point(table, c)
    correct = 1 - a - q + 2 * t  # P(prediction right) per bin
    influence = {
        "roc_auc": _auc_influence(pi, q),
        "accuracy": correct - point["accuracy"],
        "precision": (t - point["precision"] * a) / pp if pp > 0 else np.zeros_like(q),
        "recall": (t - point["recall"] * q) / p if p > 0 else np.zeros_like(q),
        "f1": (2 * t - point["f1"] * (a + q)) / (pp + p) if pp + p > 0 else np.zeros_like(q),
    }
    return {m: float(np.sqrt(pi @ (influence[m] ** 2))) for m in METRICS}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EstimatedPerformance:
    """Estimated metrics of one window and the standard error of each estimate.

    ``metrics`` and ``stderr`` are keyed ``roc_auc``, ``accuracy``, ``precision``,
    ``recall``, ``f1``; ``nan`` where undefined (an empty window; ROC AUC when the window
    is expected to hold no positive or no negative). ``count`` is the number of scored
    records. ``confusion`` holds the expected ``tp``, ``fp``, ``fn``, ``tn`` (binary) or
    ``<class>.tp`` … per class (multiclass); ``per_class`` the one-vs-rest metrics of each
    class (multiclass only).
    """

    metrics: dict[str, float]
    stderr: dict[str, float]
    count: int
    confusion: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def band(self, k: float = 1.0) -> dict[str, tuple[float, float]]:
        """``(estimate − k·stderr, estimate + k·stderr)`` per metric, clipped into [0, 1]."""
        return {
            m: (max(v - k * self.stderr[m], 0.0), min(v + k * self.stderr[m], 1.0)) for m, v in self.metrics.items()
        }

    def as_dict(self) -> dict[str, float | None]:
        """``{"roc_auc": …, "accuracy": …, "precision": …, "recall": …, "f1": …}``, NaN as None."""
        return {m: (None if math.isnan(v) else v) for m, v in self.metrics.items()}

    def stderr_dict(self) -> dict[str, float | None]:
        return {m: (None if math.isnan(v) else v) for m, v in self.stderr.items()}

    def json_fields(self) -> dict[str, Any]:
        """The estimate under the keys ``drift --format json`` gives it, offline and live:
        ``performance_estimated``, ``performance_estimated_stderr``, ``performance_estimated_rows``."""
        return {
            "performance_estimated": self.as_dict(),
            "performance_estimated_stderr": self.stderr_dict(),
            "performance_estimated_rows": self.count,
        }


def _result(metrics: dict[str, float], sigma: Mapping[str, float], count: int, **extra: Any) -> EstimatedPerformance:
    root = math.sqrt(count) if count > 0 else float("nan")
    stderr = {m: (sigma.get(m, float("nan")) / root if count > 0 else float("nan")) for m in metrics}
    return EstimatedPerformance(metrics, stderr, int(count), **extra)


# --------------------------------------------------------------------------- calibrations


@dataclass(frozen=True, eq=False)
class BinaryCalibration:
    """What a profile keeps to estimate a binary classifier's performance from its scores.

    ``table`` is over the prediction column's fine bins; ``reference`` holds the estimate on
    the reference's own histogram and ``sigma`` the per-metric ``σ`` (``stderr = σ/√n``).
    """

    map: CalibrationMap
    table: BinnedCalibration
    threshold: float
    positive: str
    rows: int
    reference: dict[str, float]
    sigma: dict[str, float]

    kind = "binary"

    def estimate(self, counts: np.ndarray) -> EstimatedPerformance:
        c = np.asarray(counts)
        if c.shape != (self.table.n_bins,):
            raise ValueError(f"expected {self.table.n_bins} fine-bin counts, got shape {c.shape}")
        metrics, confusion = _binary_point(self.table, c)
        return _result(metrics, self.sigma, int(c.sum()), confusion=confusion)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": CALIBRATION_FORMAT,
            "map": self.map.to_dict(),
            "bins": self.table.to_dict(),
            "threshold": self.threshold,
            "positive": self.positive,
            "rows": self.rows,
            "reference": _nan_to_none(self.reference),
            "sigma": _nan_to_none(self.sigma),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BinaryCalibration:
        return cls(
            CalibrationMap.from_dict(d["map"]),
            BinnedCalibration.from_dict(d["bins"]),
            float(d["threshold"]),
            str(d["positive"]),
            int(d["rows"]),
            _none_to_nan(d["reference"]),
            _none_to_nan(d["sigma"]),
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def fit_binary_calibration(
    bins: NumericBins,
    scores: np.ndarray,
    is_positive: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    positive: str = "1",
) -> BinaryCalibration:
    """Fit the isotonic map and the binned tables on labelled reference scores.

    ``bins`` are the prediction column's fine bins (the profile's); records with a
    non-finite score are dropped, as the score summary counts them as missing.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(is_positive, dtype=bool).ravel()
    if s.size != y.size:
        raise ValueError(f"{s.size} scores but {y.size} outcomes")
    finite = np.isfinite(s)
    s, y = s[finite], y[finite]
    calibration = CalibrationMap.fit_isotonic(s, y)
    table = BinnedCalibration.from_reference(bins, s, calibration, threshold)
    counts = np.bincount(bins.fine_index(s), minlength=bins.n_fine)
    reference, _ = _binary_point(table, counts)
    return BinaryCalibration(
        calibration, table, float(threshold), str(positive), int(s.size), reference, _binary_sigma(table, counts)
    )


def estimate_binary(calibration: BinaryCalibration, prediction: NumericSummary) -> EstimatedPerformance:
    """The estimate for a window whose score column is summarised by ``prediction``."""
    return calibration.estimate(prediction.counts)


# --------------------------------------------------------------------------- multiclass


@dataclass(frozen=True, eq=False)
class ClassScores:
    """A window's per-class score histograms: what multiclass estimation needs.

    ``scores[k]`` folds class ``k``'s score over every record; ``predicted[k]`` folds it over
    the records whose predicted class is ``k``. Both use the profile's bins for class ``k``.
    Summaries add, so these do too.
    """

    scores: dict[str, NumericSummary]
    predicted: dict[str, NumericSummary]

    @classmethod
    def fold(
        cls, bins: Mapping[str, NumericBins], scores: Mapping[str, np.ndarray], predicted: np.ndarray
    ) -> ClassScores:
        labels = np.asarray([str(v) for v in np.asarray(predicted, dtype=object).ravel()], dtype=str)
        all_scores, mine = {}, {}
        for k, b in bins.items():
            s = np.asarray(scores[k], dtype=np.float64).ravel()
            if s.size != labels.size:
                raise ValueError(f"class {k!r} has {s.size} scores for {labels.size} predictions")
            all_scores[k] = NumericSummary.fold(b, s)
            mine[k] = NumericSummary.fold(b, s[labels == k])
        return cls(all_scores, mine)

    def __add__(self, other: ClassScores) -> ClassScores:
        if self.scores.keys() != other.scores.keys():
            raise ValueError("cannot merge class scores over different classes")
        return ClassScores(
            {k: v + other.scores[k] for k, v in self.scores.items()},
            {k: v + other.predicted[k] for k, v in self.predicted.items()},
        )

    @classmethod
    def sum(cls, parts: Sequence[ClassScores]) -> ClassScores:
        first = parts[0]
        return cls(
            {k: NumericSummary.sum([p.scores[k] for p in parts]) for k in first.scores},
            {k: NumericSummary.sum([p.predicted[k] for p in parts]) for k in first.predicted},
        )


def _multiclass_point(
    positive: Mapping[str, np.ndarray], all_counts: Mapping[str, np.ndarray], predicted_counts: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, float]]]:
    classes = list(positive)
    n = float(np.asarray(all_counts[classes[0]]).sum()) if classes else 0.0
    if n <= 0:
        return dict.fromkeys(METRICS, float("nan")), {}, {}
    per_class: dict[str, dict[str, float]] = {}
    confusion: dict[str, float] = {}
    correct = 0.0
    for k in classes:
        q = positive[k]
        c_all = np.asarray(all_counts[k], dtype=np.float64)
        c_pred = np.asarray(predicted_counts[k], dtype=np.float64)
        tp, pp, p = float(c_pred @ q), float(c_pred.sum()), float(c_all @ q)
        correct += tp
        confusion.update({f"{k}.tp": tp, f"{k}.fp": pp - tp, f"{k}.fn": p - tp})
        per_class[k] = {
            "roc_auc": _expected_auc(c_all, q),
            "precision": _ratio(tp, pp),
            "recall": _ratio(tp, p),
            "f1": _ratio(2 * tp, pp + p),
        }
    metrics = {
        "roc_auc": float(np.mean([v["roc_auc"] for v in per_class.values()])),
        "accuracy": correct / n,
        **{m: math.fsum(v[m] for v in per_class.values()) / len(classes) for m in ("precision", "recall", "f1")},
    }
    return {m: metrics[m] for m in METRICS}, confusion, per_class


@dataclass(frozen=True, eq=False)
class MulticlassCalibration:
    """One-vs-rest calibration per class, over the fine bins of each class's score column.

    ``columns[k]`` names class ``k``'s score column; ``positive[k]`` is the per-fine-bin mean
    calibrated P(y = k) (the :class:`BinnedCalibration` ``positive`` array of that column).
    ``sigma`` is computed on the reference records (it needs their joint bins, which the
    marginal histograms do not keep).
    """

    classes: tuple[str, ...]
    columns: dict[str, str]
    maps: dict[str, CalibrationMap]
    positive: dict[str, np.ndarray]
    rows: int
    reference: dict[str, float]
    sigma: dict[str, float]

    kind = "multiclass"

    def estimate(self, window: ClassScores) -> EstimatedPerformance:
        for k in self.classes:
            if k not in window.scores or k not in window.predicted:
                raise ValueError(f"the window has no score histograms for class {k!r}")
        metrics, confusion, per_class = _multiclass_point(
            self.positive,
            {k: window.scores[k].counts for k in self.classes},
            {k: window.predicted[k].counts for k in self.classes},
        )
        return _result(
            metrics, self.sigma, window.scores[self.classes[0]].count, confusion=confusion, per_class=per_class
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": CALIBRATION_FORMAT,
            "classes": {
                k: {"column": self.columns[k], "map": self.maps[k].to_dict(), "positive": self.positive[k].tolist()}
                for k in self.classes
            },
            "order": list(self.classes),
            "rows": self.rows,
            "reference": _nan_to_none(self.reference),
            "sigma": _nan_to_none(self.sigma),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MulticlassCalibration:
        order = tuple(str(k) for k in d["order"])
        per = d["classes"]
        return cls(
            order,
            {k: str(per[k]["column"]) for k in order},
            {k: CalibrationMap.from_dict(per[k]["map"]) for k in order},
            {k: np.asarray(per[k]["positive"], dtype=np.float64) for k in order},
            int(d["rows"]),
            _none_to_nan(d["reference"]),
            _none_to_nan(d["sigma"]),
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def fit_multiclass_calibration(
    bins: Mapping[str, NumericBins],
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    predicted: np.ndarray,
    columns: Mapping[str, str] | None = None,
) -> MulticlassCalibration:
    """Fit one isotonic map per class (``score_k`` → P(y = k)) on the labelled reference.

    ``labels`` and ``predicted`` are compared with the class names as strings. Records with
    a non-finite score for some class are dropped from the fit and from ``σ``.
    """
    classes = tuple(str(k) for k in bins)
    if len(classes) < 2:
        raise ValueError("multiclass calibration needs at least two classes")
    y = np.asarray([str(v) for v in np.asarray(labels, dtype=object).ravel()], dtype=str)
    pred = np.asarray([str(v) for v in np.asarray(predicted, dtype=object).ravel()], dtype=str)
    matrix = np.vstack([np.asarray(scores[k], dtype=np.float64).ravel() for k in classes])
    if matrix.shape[1] != y.size or pred.size != y.size:
        raise ValueError("scores, labels and predictions must have one value per record")
    keep = np.isfinite(matrix).all(axis=0)
    matrix, y, pred = matrix[:, keep], y[keep], pred[keep]
    if y.size == 0:
        raise ValueError("cannot calibrate without records that have every class's score")
    maps, positive, index = {}, {}, {}
    for row, k in enumerate(classes):
        maps[k] = CalibrationMap.fit_isotonic(matrix[row], y == k)
        positive[k] = BinnedCalibration.from_reference(bins[k], matrix[row], maps[k]).positive
        index[k] = bins[k].fine_index(matrix[row])
    all_counts = {k: np.bincount(index[k], minlength=bins[k].n_fine) for k in classes}
    predicted_counts = {k: np.bincount(index[k][pred == k], minlength=bins[k].n_fine) for k in classes}
    reference, _, per_class = _multiclass_point(positive, all_counts, predicted_counts)
    sigma = _multiclass_sigma(classes, positive, index, pred, all_counts, reference, per_class)
    return MulticlassCalibration(
        classes,
        {k: (columns or {}).get(k, k) for k in classes},
        maps,
        positive,
        int(y.size),
        reference,
        sigma,
    )


def _multiclass_sigma(
    classes: tuple[str, ...],
    positive: Mapping[str, np.ndarray],
    index: Mapping[str, np.ndarray],
    predicted: np.ndarray,
    all_counts: Mapping[str, np.ndarray],
    reference: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, float]],
) -> dict[str, float]:
    """σ per metric from the reference records' influence values (their joint bins are known here)."""
    n = predicted.size
    influence = {m: np.zeros(n) for m in METRICS}
    for k in classes:
        q = positive[k][index[k]]  # each record's calibrated P(y = k)
        mine = (predicted == k).astype(np.float64)
        pp, p = float(mine.sum()) / n, float(q.sum()) / n
        metrics = per_class[k]
        influence["accuracy"] += mine * q
        if pp > 0:
            influence["precision"] += (mine * q - metrics["precision"] * mine) / pp
        if p > 0:
            influence["recall"] += (mine * q - metrics["recall"] * q) / p
        if pp + p > 0:
            influence["f1"] += (2 * mine * q - metrics["f1"] * (mine + q)) / (pp + p)
        shares = all_counts[k] / n
        influence["roc_auc"] += _auc_influence(shares, positive[k])[index[k]]
    influence["accuracy"] -= reference["accuracy"]
    for m in ("roc_auc", "precision", "recall", "f1"):
        influence[m] /= len(classes)
    return {m: float(np.sqrt(np.mean(influence[m] ** 2))) for m in METRICS}


# --------------------------------------------------------------------------- profile level


Calibration = BinaryCalibration | MulticlassCalibration


def calibration_to_json(calibration: Calibration) -> str:
    return json.dumps(calibration.to_dict(), sort_keys=True)


def calibration_from_json(text: str) -> Calibration:
    """Restore what :func:`calibration_to_json` wrote; ValueError for anything else."""
    try:
        data = json.loads(text)
        if data.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"calibration format {data.get('format')!r} is not supported")
        if data.get("kind") == "binary":
            return BinaryCalibration.from_dict(data)
        if data.get("kind") == "multiclass":
            return MulticlassCalibration.from_dict(data)
        raise ValueError(f"unknown calibration kind {data.get('kind')!r}")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"calibration is unreadable: {exc}") from None


def _require_calibration(profile: ReferenceProfile) -> Calibration:
    calibration = getattr(profile, "calibration", None)
    if calibration is None:
        raise ValueError(
            "the profile has no calibration map: rebuild it with 'model-health reference build' "
            "with a score --prediction and a --label"
        )
    return calibration


def estimate_performance(profile: ReferenceProfile, prediction: NumericSummary | ClassScores) -> EstimatedPerformance:
    """Estimated performance of the window whose predictions ``prediction`` summarises.

    Binary profiles take the window's score-column summary (over the profile's prediction
    bins); multiclass profiles take its :class:`ClassScores`. ValueError when the profile
    has no calibration or the summary does not fit it.
    """
    calibration = _require_calibration(profile)
    if isinstance(calibration, BinaryCalibration):
        if not isinstance(prediction, NumericSummary):
            raise ValueError("a binary profile estimates from the score column's NumericSummary")
        reference_bins = getattr(profile.prediction, "bins", None)
        if reference_bins is not None and prediction.bins is not reference_bins and prediction.bins != reference_bins:
            raise ValueError("the score summary is not over the profile's prediction bins")
        return calibration.estimate(prediction.counts)
    if not isinstance(prediction, ClassScores):
        raise ValueError("a multiclass profile estimates from the window's ClassScores")
    return calibration.estimate(prediction)


def reference_estimate(profile: ReferenceProfile) -> EstimatedPerformance:
    """The estimate on the reference itself, with standard errors for its size."""
    calibration = _require_calibration(profile)
    return _result(dict(calibration.reference), calibration.sigma, calibration.rows)


@dataclass(frozen=True)
class DropRule:
    """When an estimated metric counts as dropped below the reference.

    ``reference − estimate > max(k·sqrt(stderr² + reference_stderr²), min_drop)`` on a
    window with at least ``min_samples`` scored records. ``k = 3`` holds one metric's
    false-alarm rate near 0.13 % on stationary data; ``min_drop`` keeps very large windows
    from flagging drops nobody would act on.
    """

    k: float = 3.0
    min_drop: float = 0.005
    min_samples: int = 500

    def __post_init__(self) -> None:
        if self.k <= 0 or self.min_drop < 0 or self.min_samples < 0:
            raise ValueError("k must be positive, min_drop and min_samples non-negative")


def performance_dropped(
    estimate: EstimatedPerformance, reference: EstimatedPerformance, rule: DropRule = DropRule()
) -> dict[str, bool]:
    """Per metric, whether the window's estimate fell below the reference's by the rule."""
    out = {}
    for m, value in estimate.metrics.items():
        ref = reference.metrics.get(m, float("nan"))
        se = math.hypot(estimate.stderr.get(m, float("nan")), reference.stderr.get(m, 0.0) or 0.0)
        drop = ref - value
        out[m] = bool(
            estimate.count >= rule.min_samples
            and not (math.isnan(drop) or math.isnan(se))
            and drop > max(rule.k * se, rule.min_drop)
        )
    return out


def _nan_to_none(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else float(v)) for k, v in values.items()}


def _none_to_nan(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: (float("nan") if v is None else float(v)) for k, v in values.items()}
