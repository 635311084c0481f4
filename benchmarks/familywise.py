"""False pages of a stationary model and detection power: the one-column rule against the family-wise one.

    python benchmarks/familywise.py [--days 30] [--features 10,100,500] [--rates 10,30,100,1000]
        [--power-windows 200] [--check-windows 20] [--tail-draws 0] [--seed 20261207] [--json PATH]

Not a timed benchmark: it measures what the drift rule and the generated ``ModelHealthFeatureDrift``
alert do to an on-call rotation. Two parts.

**False pages.** One model whose features never change: 80% numeric in four shapes (normal,
log-normal, uniform, integers 0–5) and 20% categorical (15 skewed categories, 30% down to
0.1%). Each feature has its own 100,000-row reference profile, built by the project's code
(``NumericBins.from_reference``, ``NumericSummary.fold``; top-K categories). Traffic is
``rate`` records a minute (Poisson), one-minute buckets, a 1h window of 60 buckets, evaluated
every minute for ``--days`` simulated days. A bucket's counts over a feature's bins are drawn
directly with the shape's exact bin probabilities (its CDF at the frozen edges): by Poisson
splitting, the counts per bin of a Poisson number of records are independent Poissons, which
is what folding fresh records gives. Windows are sums of buckets, as the aggregator's are.

Per window and feature, PSI and JS come from the window's counts with the decision rule's own
row functions; KS D from the fine histogram: bin groups bound it from above (D over group edges
plus the largest group share), and only where that bound reaches the KS threshold are the
window's buckets refined to fine bins (drawn once per bucket, so overlapping windows share
them) and D computed exactly by ``ks_binned``. A statistic past its effect-size threshold then
gets its gated p-value from :func:`detectors.decision.method_pvalue` — the aggregator's code,
bootstrap, Chernoff bound and all — and the verdicts follow by
:func:`detectors.decision.fired_at`: one column on its own (``alpha``), or the model's family
(``min(alpha, alpha_model / N)``, N the features with 500+ values in the window). A
cross-check folds further windows from raw values (with drifted features, so that there are
flags) and judges them both ways: through :func:`detectors.compare.compare` and
:func:`detectors.familywise.apply_family`, and through the gated p-values as above.

The alert is the generated rule's logic, with its parameters read from ``AlertsConfig``: a
window with ``min_drifted_features`` flagged features and ``min_samples`` records, held at
every one-minute rule evaluation for ``for`` (Prometheus fires when the condition has held
``for`` since it first became true). Four combinations: the one-column rule with the old
``for: 30m``, each change alone, and the shipped default (family-wise, ``for: 90m``).

**Power.** Independent 2,000-row (and 600-row) windows of the 100- and 500-feature model, with
one numeric feature (normal) shifted by 0.5σ and one categorical feature's 21% category
doubled to 45% (the others scaled down), and a smaller effect (0.3σ, 21% → 30%) that shows
what the correction costs: how often each is flagged, and how often anything else is,
through ``compare`` and ``apply_family`` on folded raw values.

``--tail-draws N`` adds a table of the Chernoff bound (detectors/tail_bound.py) against N
two-sample null windows, at levels 1e-4 and 1e-5.

Figures and their date: docs/statistics.md (family-wise control, alert persistence).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from detectors.binning import CategoricalBins, NumericBins  # noqa: E402
from detectors.compare import ColumnDrift, compare  # noqa: E402
from detectors.decision import DriftRule, fired_at, js_rows, method_pvalue, psi_rows  # noqa: E402
from detectors.familywise import FamilyLevel, apply_family  # noqa: E402
from detectors.ks import ks_binned  # noqa: E402
from detectors.psi import DEFAULT_EPSILON  # noqa: E402
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary  # noqa: E402
from exporter.config import AlertsConfig, duration_seconds  # noqa: E402

REFERENCE_ROWS = 100_000
WINDOW_BUCKETS = 60  # a 1h window of one-minute buckets
MINUTES_PER_MONTH = 30 * 24 * 60
GROUPS_PER_COARSE = 10  # fine bins are grouped ~100 to a feature for the KS screen
SKEWED = np.array([0.30, 0.21, 0.14, 0.10, 0.07, 0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.008, 0.004, 0.002, 0.001])


def moved_shares(share: float) -> np.ndarray:
    """SKEWED with category c1 (21%) at ``share``, the others scaled to make room."""
    out = SKEWED * (1 - share) / (1 - SKEWED[1])
    out[1] = share
    return out


@dataclass(frozen=True)
class Effect:
    """The drift the power part injects: one normal feature's shift, one category's new share."""

    sigma: float = 0.5
    share: float = 0.45

    @property
    def label(self) -> str:
        return f"{self.sigma:g}σ shift, c1 21% → {self.share:.0%}"


EFFECTS = (Effect(0.5, 0.45), Effect(0.3, 0.30))  # the issue's, and a smaller one that shows the cost
CATEGORIES = CategoricalBins(tuple(f"c{i}" for i in range(SKEWED.size)))
INTEGER_SHARES = np.array([0.4, 0.25, 0.15, 0.1, 0.07, 0.03])  # integers 0–5


# ---------------------------------------------------------------------------------------------
# Features: shapes, references, exact bin probabilities.


@dataclass(frozen=True)
class Shape:
    name: str
    draw: Callable[[np.random.Generator, int, float], np.ndarray]  # (rng, size, shift in σ) → values
    below: Callable[[np.ndarray], np.ndarray]  # P(X < x) at each x


def _integer_below(x: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate(([0.0], np.cumsum(INTEGER_SHARES)))
    return cumulative[np.clip(np.ceil(x), 0, INTEGER_SHARES.size).astype(int)]


SHAPES = (
    Shape("normal", lambda rng, size, shift: rng.normal(shift, 1.0, size), stats.norm.cdf),
    Shape("log-normal", lambda rng, size, shift: rng.lognormal(shift, 1.0, size), stats.lognorm(1.0).cdf),
    Shape("uniform", lambda rng, size, shift: rng.uniform(0, 1, size) + shift / math.sqrt(12), stats.uniform.cdf),
    Shape(
        "integers 0-5",
        lambda rng, size, shift: rng.choice(6, size=size, p=INTEGER_SHARES).astype(np.float64),
        _integer_below,
    ),
)


@dataclass
class Feature:
    name: str
    kind: str
    reference: ColumnSummary
    shares: np.ndarray  # true probability of each bin the summary counts (fine bins, or categories)
    shape: Shape | None = None
    # Numeric: fine bins grouped for the KS screen, and the coarse (PSI) bin of each group.
    group_of_fine: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    coarse_of_group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def bins_counted(self) -> int:
        return self.shares.size


def build_features(count: int, seed: int) -> list[Feature]:
    """Feature ``i`` is categorical when ``i % 5 == 4``, else numeric of shape ``i % 4``."""
    features = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        if i % 5 == 4:
            counts = np.append(rng.multinomial(REFERENCE_ROWS, SKEWED), 0)
            features.append(
                Feature(f"c{i:03d}", "categorical", CategoricalSummary(CATEGORIES, counts), np.append(SKEWED, 0.0))
            )
            continue
        shape = SHAPES[i % len(SHAPES)]
        values = shape.draw(rng, REFERENCE_ROWS, 0.0)
        bins = NumericBins.from_reference(values)
        reference = NumericSummary.fold(bins, values)
        edges = np.concatenate(([-np.inf], bins.edges, [np.inf]))
        below = np.concatenate(([0.0], shape.below(bins.edges), [1.0]))
        shares = np.diff(below)
        group_of_fine, coarse_of_group = _groups(bins.coarse_of_fine)
        assert edges.size == shares.size + 1
        features.append(
            Feature(f"n{i:03d}", "numeric", reference, shares / shares.sum(), shape, group_of_fine, coarse_of_group)
        )
    return features


def _groups(coarse_of_fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous groups of fine bins, up to ``GROUPS_PER_COARSE`` inside each coarse bin."""
    group_of_fine = np.empty(coarse_of_fine.size, dtype=np.int64)
    coarse_of_group: list[int] = []
    for coarse in np.unique(coarse_of_fine):
        members = np.flatnonzero(coarse_of_fine == coarse)
        parts = np.array_split(members, min(GROUPS_PER_COARSE, members.size))
        for part in parts:
            group_of_fine[part] = len(coarse_of_group)
            coarse_of_group.append(int(coarse))
    return group_of_fine, np.array(coarse_of_group, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The stationary stream, one feature at a time.


@dataclass
class Gated:
    """One feature's window with a statistic past its threshold: its methods' gated p-values."""

    feature: int
    window: int  # index of the window: its first bucket
    pvalues: dict[str, float]


@dataclass
class Stream:
    minutes: int
    rate: float
    rule: DriftRule
    seed: int
    gated: list[Gated] = field(default_factory=list)
    refined: int = 0  # windows whose KS needed the fine bins

    @property
    def windows(self) -> int:
        return self.minutes - WINDOW_BUCKETS + 1

    def run(self, index: int, feature: Feature) -> np.ndarray:
        """Simulate one feature; keep its gated windows; return its present count per window."""
        rng = np.random.default_rng([self.seed, index, 1])
        if feature.kind == "categorical":
            buckets = rng.poisson(self.rate * feature.shares, size=(self.minutes, feature.bins_counted))
            windows = _window_sums(buckets)
            self._categorical(index, feature, windows)
        else:
            group_shares = np.bincount(feature.group_of_fine, weights=feature.shares)
            buckets = rng.poisson(self.rate * group_shares, size=(self.minutes, group_shares.size))
            windows = _window_sums(buckets)
            self._numeric(index, feature, buckets, windows)
        return windows.sum(axis=1)

    def _categorical(self, index: int, feature: Feature, windows: np.ndarray) -> None:
        reference = feature.reference.counts.astype(np.float64)
        present = windows.sum(axis=1)
        ok = present > 0
        refs = np.broadcast_to(reference, windows.shape)
        psi = np.full(present.size, np.nan)
        js = np.full(present.size, np.nan)
        psi[ok] = psi_rows(refs[ok], windows[ok], DEFAULT_EPSILON)
        js[ok] = js_rows(refs[ok], windows[ok])
        candidates = np.flatnonzero((psi >= self.rule.psi_threshold) | (js >= self.rule.js_threshold))
        n = int(feature.reference.counts.sum())
        for end in candidates:
            m = int(present[end])
            values = {"psi": float(psi[end]), "js": float(js[end])}
            self._gate(index, int(end), values, n, m, (feature.reference.counts, windows[end]))

    def _numeric(self, index: int, feature: Feature, buckets: np.ndarray, windows: np.ndarray) -> None:
        reference = feature.reference.counts
        n = int(reference.sum())
        ref_groups = np.bincount(feature.group_of_fine, weights=reference, minlength=windows.shape[1])
        ref_coarse = np.bincount(feature.coarse_of_group, weights=ref_groups)
        onehot = np.zeros((windows.shape[1], ref_coarse.size))
        onehot[np.arange(windows.shape[1]), feature.coarse_of_group] = 1.0
        coarse = windows @ onehot
        present = windows.sum(axis=1)
        ok = present > 0
        psi = np.full(present.size, np.nan)
        psi[ok] = psi_rows(np.broadcast_to(ref_coarse, coarse.shape)[ok], coarse[ok], DEFAULT_EPSILON)
        # KS screen: D over group edges plus the largest share of one group bounds the fine D.
        share = windows / np.maximum(present, 1)[:, None]
        ref_share = ref_groups / n
        gap = np.abs(np.cumsum(ref_share)[None, :] - np.cumsum(share, axis=1)).max(axis=1)
        cell = np.maximum(share.max(axis=1), ref_share.max())
        exact_needed = ok & (gap + cell >= self.rule.ks_threshold)
        if feature.group_of_fine.size == windows.shape[1]:  # one fine bin a group: the screen is D
            exact_needed[:] = False
            ks = np.where(ok, gap, np.nan)
        else:
            ks = np.full(present.size, np.nan)
        fine = _Refiner(feature, buckets, np.random.default_rng([self.seed, index, 2]))
        for end in np.flatnonzero(exact_needed):
            self.refined += 1
            ks[end] = ks_binned(reference, fine.window(int(end))).statistic
        candidates = np.flatnonzero(ok & ((psi >= self.rule.psi_threshold) | (ks >= self.rule.ks_threshold)))
        for end in candidates:
            values = {"psi": float(psi[end]), "ks": float(ks[end]) if not math.isnan(ks[end]) else 0.0}
            self._gate(index, int(end), values, n, int(present[end]), (ref_coarse.astype(np.int64), coarse[end]))

    def _gate(
        self, index: int, window: int, values: dict[str, float], n: int, m: int, histograms: tuple[np.ndarray, ...]
    ) -> None:
        methods = tuple(values)
        pvalues = {
            method: method_pvalue(method, values[method], n, m, self.rule, len(methods), histograms, DEFAULT_EPSILON)
            for method in methods
        }
        if min(pvalues.values()) < 1.0:
            self.gated.append(Gated(index, window, pvalues))


def _window_sums(buckets: np.ndarray) -> np.ndarray:
    """Every full window's counts: sums of ``WINDOW_BUCKETS`` consecutive buckets."""
    cumulative = np.cumsum(buckets, axis=0, dtype=np.int64)
    windows = cumulative[WINDOW_BUCKETS - 1 :].copy()
    windows[1:] -= cumulative[:-WINDOW_BUCKETS]
    return windows


class _Refiner:
    """Fine-bin counts of a feature's buckets, drawn within each group once per bucket."""

    def __init__(self, feature: Feature, buckets: np.ndarray, rng: np.random.Generator) -> None:
        self.feature, self.buckets, self.rng = feature, buckets, rng
        self.memo: dict[int, np.ndarray] = {}
        self.members = [np.flatnonzero(feature.group_of_fine == g) for g in range(buckets.shape[1])]
        # A group the shape never reaches (an empty tail) is never refined: its buckets stay 0.
        self.within = [feature.shares[m] / max(feature.shares[m].sum(), 1e-300) for m in self.members]

    def bucket(self, minute: int) -> np.ndarray:
        if minute not in self.memo:
            fine = np.zeros(self.feature.group_of_fine.size, dtype=np.int64)
            for group in np.flatnonzero(self.buckets[minute]):
                fine[self.members[group]] = self.rng.multinomial(self.buckets[minute, group], self.within[group])
            self.memo[minute] = fine
        return self.memo[minute]

    def window(self, first: int) -> np.ndarray:
        return sum(
            (self.bucket(minute) for minute in range(first, first + WINDOW_BUCKETS)), np.zeros(1, dtype=np.int64)
        )


# ---------------------------------------------------------------------------------------------
# The alert: flags per evaluation → pages.


def pages(condition: np.ndarray, hold_minutes: int) -> int:
    """Firings of a rule with ``for: hold_minutes`` evaluated each minute: runs of a true
    condition lasting at least ``hold_minutes`` after their first evaluation.

    >>> pages(np.array([1, 1, 1, 0, 1, 1, 1, 1], dtype=bool), 3)
    1
    """
    padded = np.concatenate(([False], condition, [False]))
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    lengths = changes[1::2] - changes[::2]
    return int((lengths >= hold_minutes + 1).sum())


@dataclass(frozen=True)
class Row:
    features: int
    rate: float
    days: float
    flagged_alone: float  # share of evaluations with a flagged feature, each column on its own
    flagged_family: float
    pages: dict[str, int]  # combination → pages over the simulated days
    bound: float  # the analytic bound on pages per 30 days for the shipped default

    def per_month(self, combination: str) -> float:
        return self.pages[combination] * 30 / self.days


def simulate(
    features: list[Feature], counts: list[int], rate: float, days: float, rule: DriftRule, seed: int
) -> tuple[list[Row], dict[str, Any]]:
    minutes = int(days * 24 * 60) + WINDOW_BUCKETS - 1
    stream = Stream(minutes, rate, rule, seed)
    windows = stream.windows
    tested = {count: np.zeros(windows, dtype=np.int64) for count in counts}
    samples = None
    started = time.perf_counter()
    for index, feature in enumerate(features):
        present = stream.run(index, feature)
        if samples is None:
            samples = present  # every feature is present in every record: the model's window size
        for count in counts:
            if index < count:
                tested[count] += present >= rule.min_samples
    assert samples is not None
    elapsed = time.perf_counter() - started
    alerts = AlertsConfig().feature_drift
    new_hold = int(duration_seconds(alerts.for_duration) // 60)
    old_hold = 30
    enough = samples >= alerts.min_samples
    rows = []
    for count in counts:
        alone = np.zeros(windows, dtype=np.int64)
        family = np.zeros(windows, dtype=np.int64)
        for entry in stream.gated:
            if entry.feature >= count:
                continue
            if fired_at(entry.pvalues, rule.alpha_single):
                alone[entry.window] += 1
            level = FamilyLevel(rule.alpha_model, int(tested[count][entry.window])).level(rule)
            if fired_at(entry.pvalues, level):
                family[entry.window] += 1
        conditions = {
            "alone": (alone >= alerts.min_drifted_features) & enough,
            "family": (family >= alerts.min_drifted_features) & enough,
        }
        combos = {
            "one column, for 30m (before)": pages(conditions["alone"], old_hold),
            "family-wise, for 30m": pages(conditions["family"], old_hold),
            f"one column, for {alerts.for_duration}": pages(conditions["alone"], new_hold),
            f"family-wise, for {alerts.for_duration} (now)": pages(conditions["family"], new_hold),
        }
        grid = MINUTES_PER_MONTH / max(new_hold - WINDOW_BUCKETS, 1)
        rows.append(
            Row(
                features=count,
                rate=rate,
                days=days,
                flagged_alone=float((alone > 0).mean()),
                flagged_family=float((family > 0).mean()),
                pages=combos,
                bound=(grid + 1) * rule.alpha_model**2,
            )
        )
    info = {"seconds": elapsed, "gated": len(stream.gated), "refined": stream.refined, "windows": windows}
    return rows, info


# ---------------------------------------------------------------------------------------------
# Cross-check: flagged windows through compare() and apply_family().


def cross_check(features: list[Feature], rows: int, rule: DriftRule, seed: int, windows: int) -> tuple[int, int]:
    """Windows folded from raw values (a shifted feature in each, so that there are flags),
    judged by the aggregator's path — ``compare`` then ``apply_family`` — and by the gated
    p-values the simulation uses; returns (windows judged alike at both levels, flags seen)."""
    rng = np.random.default_rng([seed, 99])
    agreed = flags = 0
    for _ in range(windows):
        results, currents = _window_results(features, rows, rng, rule, Effect())
        judged, family = apply_family(results, lambda _: rule)
        alone_same = family_same = True
        for feature in features:
            values, histograms = _gate_inputs(feature, currents[feature.name])
            m, n = currents[feature.name].count, feature.reference.count
            pvalues = {
                method: method_pvalue(method, values[method], n, m, rule, len(values), histograms) for method in values
            }
            alone_same &= fired_at(pvalues, rule.alpha_single) == results[feature.name].fired
            family_same &= fired_at(pvalues, family.level(rule)) == judged[feature.name].fired
            flags += bool(judged[feature.name].fired)
        agreed += alone_same and family_same
    return agreed, flags


def _gate_inputs(feature: Feature, current: ColumnSummary) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray]]:
    if isinstance(current, CategoricalSummary):
        ref, cur = feature.reference.counts.astype(np.float64), current.counts.astype(np.float64)
        values = {"psi": float(psi_rows(ref[None], cur[None])[0]), "js": float(js_rows(ref[None], cur[None])[0])}
        return values, (feature.reference.counts, current.counts)
    assert isinstance(feature.reference, NumericSummary) and isinstance(current, NumericSummary)
    bins = feature.reference.bins
    ref, cur = bins.coarse_counts(feature.reference.counts), bins.coarse_counts(current.counts)
    psi = float(psi_rows(ref[None].astype(float), cur[None].astype(float))[0])
    return {"psi": psi, "ks": ks_binned(feature.reference.counts, current.counts).statistic}, (ref, cur)


def _window_results(
    features: list[Feature], rows: int, rng: np.random.Generator, rule: DriftRule, effect: Effect | None
) -> tuple[dict[str, ColumnDrift], dict[str, ColumnSummary]]:
    """One window of ``rows`` records folded from raw values; with an ``effect`` the first
    normal feature shifts and the first categorical one's 21% category takes its new share."""
    shift = effect is not None
    moved_categories = moved_shares(effect.share) if effect is not None else SKEWED
    results: dict[str, ColumnDrift] = {}
    currents: dict[str, ColumnSummary] = {}
    shifted_numeric = shifted_categorical = False
    for feature in features:
        current: ColumnSummary
        if feature.kind == "categorical":
            moved = shift and not shifted_categorical
            shifted_categorical |= moved
            counts = rng.multinomial(rows, moved_categories if moved else SKEWED)
            current = CategoricalSummary(CATEGORIES, np.append(counts, 0))
        else:
            assert feature.shape is not None and isinstance(feature.reference, NumericSummary)
            moved = shift and not shifted_numeric and feature.shape.name == "normal"
            shifted_numeric |= moved
            current = NumericSummary.fold(
                feature.reference.bins, feature.shape.draw(rng, rows, effect.sigma if moved and effect else 0.0)
            )
        currents[feature.name] = current
        results[feature.name] = compare(feature.reference, current, rule)
    return results, currents


def power(
    features: list[Feature], count: int, rows: int, windows: int, rule: DriftRule, seed: int, effect: Effect
) -> dict[str, float]:
    """Shares of windows where the shifted features are flagged, and where anything else is."""
    rng = np.random.default_rng([seed, count, rows, round(effect.sigma * 100)])
    shifted = (
        next(f.name for f in features if f.shape is SHAPES[0]),
        next(f.name for f in features if f.kind == "categorical"),
    )
    hits = {"shift, one column": 0, "shift, family": 0, "share, one column": 0, "share, family": 0}
    others = {"one column": 0, "family": 0}
    for _ in range(windows):
        results, _ = _window_results(features[:count], rows, rng, rule, effect)
        judged, _ = apply_family(results, lambda _: rule)
        for label, verdicts in (("one column", results), ("family", judged)):
            flagged = {name for name, result in verdicts.items() if result.drift}
            hits[f"shift, {label}"] += shifted[0] in flagged
            hits[f"share, {label}"] += shifted[1] in flagged
            others[label] += bool(flagged - set(shifted))
    return {**{k: v / windows for k, v in hits.items()}, **{f"other, {k}": v / windows for k, v in others.items()}}


# ---------------------------------------------------------------------------------------------
# The Chernoff bound against the two-sample bootstrap, far out in the tail.

TAIL_CASES = (
    ("15 skewed categories", SKEWED, 100_000, 600),
    ("15 skewed categories, 2,000-row reference", SKEWED, 2_000, 600),
    (
        "zipf, top 50 + other",
        (lambda z: np.append(z[:50], z[50:].sum()) / z.sum())(1 / np.arange(1, 81) ** 1.1),
        100_000,
        600,
    ),
    ("two categories 70/30", np.array([0.7, 0.3]), 100_000, 500),
    ("deciles (numeric PSI)", np.full(10, 0.1), 100_000, 500),
    ("15 skewed categories", SKEWED, 100_000, 2_000),
)


def tails(draws: int, seed: int) -> list[dict[str, Any]]:
    """Per case and method: the 1e-4 and 1e-5 quantiles of ``draws`` two-sample null windows
    (the bootstrap the rule uses, at a depth it cannot afford per column), the bound's, and the
    share of null windows past the bound's point relative to the level (≤ 1: a bound)."""
    from detectors.tail_bound import tail_bound

    out = []
    for name, shares, n, m in TAIL_CASES:
        reference = np.round(shares * n).astype(np.int64)
        rng = np.random.default_rng([seed, n, m])
        for method in ("psi", "js"):
            values = []
            for chunk in range(0, draws, 250_000):
                size = min(250_000, draws - chunk)
                ref = rng.multinomial(int(reference.sum()), reference / reference.sum(), size=size).astype(float)
                cur = rng.multinomial(m, reference / reference.sum(), size=size).astype(float)
                values.append(psi_rows(ref, cur) if method == "psi" else js_rows(ref, cur))
            null = np.concatenate(values)
            bound = tail_bound(method, reference, m)
            assert bound is not None
            row: dict[str, Any] = {"case": name, "window": m, "method": method}
            for label, alpha in (("1e-4", 1e-4), ("1e-5", 1e-5)):
                low, high = 0.0, 5.0
                for _ in range(50):
                    middle = (low + high) / 2
                    low, high = (low, middle) if bound.tail(middle) <= alpha else (middle, high)
                row[f"bootstrap {label}"] = float(np.quantile(null, 1 - alpha))
                row[f"bound {label}"] = high
                row[f"past bound / {label}"] = float((null > high).mean() / alpha)
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--features", default="10,100,500")
    parser.add_argument("--rates", default="10,30,100,1000", help="records a minute")
    parser.add_argument("--power-windows", type=int, default=200)
    parser.add_argument("--check-windows", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--tail-draws", type=int, default=0, help="also compare the Chernoff bound with this many null windows"
    )
    args = parser.parse_args(argv)
    counts = sorted(int(x) for x in args.features.split(","))
    rates = [float(x) for x in args.rates.split(",")]
    rule = DriftRule()
    started = time.perf_counter()
    features = build_features(max(counts), args.seed)
    print(f"{max(counts)} features with 100,000-row references built in {time.perf_counter() - started:.1f} s")
    alerts = AlertsConfig().feature_drift
    print(
        f"rule: alpha {rule.alpha}, alpha_model {rule.alpha_model}, min_samples {rule.min_samples}; alert: "
        f">= {alerts.min_drifted_features} feature(s), window >= {alerts.min_samples} records, for "
        f"{alerts.for_duration} (was 30m)\n"
    )
    out: dict[str, Any] = {"false_pages": [], "power": [], "args": vars(args) | {"json": str(args.json)}}
    for rate in rates:
        rows, info = simulate(features, counts, rate, args.days, rule, args.seed)
        print(
            f"{rate:g} records/min, {args.days:g} days ({info['windows']:,} evaluations): simulated in "
            f"{info['seconds']:.0f} s; {info['gated']:,} feature-windows past an effect threshold, "
            f"{info['refined']:,} KS refined to fine bins"
        )
        for row in rows:
            shown = "; ".join(f"{name}: {row.per_month(name):.2f}" for name in row.pages)
            print(
                f"  {row.features:>3} features: flagged evaluations {row.flagged_alone:.3%} one by one, "
                f"{row.flagged_family:.3%} family-wise; false pages / 30 days: {shown}; bound (now) {row.bound:.3f}"
            )
            out["false_pages"].append(row.__dict__ | {"per_month": {k: row.per_month(k) for k in row.pages}})
        print()
    if args.check_windows:
        agreed, flags = cross_check(features[: min(counts[-1], 100)], 2_000, rule, args.seed, args.check_windows)
        print(
            f"cross-check: {agreed}/{args.check_windows} windows (with {flags} family-wise flags) judged alike by "
            "compare() + apply_family() and by the simulation's gated p-values\n"
        )
        out["cross_check"] = {"agreed": agreed, "windows": args.check_windows, "flags": flags}
    print("power: one normal feature shifted, one category's share moved; windows flagged")
    for effect in EFFECTS:
        sizes = [c for c in counts if c >= 100] or counts
        for count in sizes if effect == EFFECTS[0] else sizes[:1]:
            for rows_per_window in (600, 2_000):
                t = time.perf_counter()
                rates_ = power(features, count, rows_per_window, args.power_windows, rule, args.seed, effect)
                print(
                    f"  {effect.label}, {count} features, {rows_per_window:,}-row windows ({args.power_windows}, "
                    f"{time.perf_counter() - t:.0f} s): " + ", ".join(f"{k} {v:.1%}" for k, v in rates_.items())
                )
                out["power"].append({"effect": effect.label, "features": count, "rows": rows_per_window, **rates_})
    if args.tail_draws:
        t = time.perf_counter()
        rows = tails(args.tail_draws, args.seed)
        print(
            f"\nChernoff bound against {args.tail_draws:,} two-sample null windows ({time.perf_counter() - t:.0f} s):"
        )
        for row in rows:
            print(
                f"  {row['case']}, {row['window']} rows, {row['method']}: "
                + ", ".join(
                    f"{k}: bootstrap {row[f'bootstrap {k}']:.4f} bound {row[f'bound {k}']:.4f} "
                    f"(past it {row[f'past bound / {k}']:.2f}×level)"
                    for k in ("1e-4", "1e-5")
                )
            )
        out["tails"] = rows
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s")
    out["seconds"] = total
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
