"""False alarms of ConceptDrift's estimated half on stationary traffic, as the alert sees it.

    python benchmarks/concept_drift_alert.py [--references 20] [--days 30] [--rates 25,100,400]
        [--hold 30] [--seed 20261207] [--json PATH]

Not a timed benchmark. ``benchmarks/performance_estimation.py`` measures the drop rule on
independent windows; an alert sees something else: one sliding window (60 one-minute buckets,
the default ``1h`` window) evaluated every minute, so consecutive evaluations share 59/60 of
their data, and ``ModelHealthConceptDrift`` fires only when its condition has held for the
rule's ``for`` (30 evaluations at the default 30m). This script simulates exactly that for the
``estimated_performance_drop`` signal, which fires while labels are missing when any of the
default ``higher_is_better`` metrics the estimate has (accuracy, F1, ROC AUC) is flagged by the
exporter's drop rule (k = 3, min_drop = 0.005, min_samples = 500).

Data as in ``benchmarks/performance_estimation.py`` (continuous scores): for each of
``--references`` independent references of 50,000 labelled records a calibration is fitted as
``build_profile`` fits it; then ``--days`` of stationary traffic at each rate (predictions a
minute, each minute's count Poisson), every minute bucket multinomial over the fine bins with
the process's exact bin probabilities. Per rate it reports:

* ``condition``: the share of evaluations on which some metric is flagged;
* ``episodes/day``: alerts that start (the condition reaching ``--hold`` consecutive
  evaluations), per model and day, pooled over references, and the largest for one reference;
* ``time to fire``: after the same covariate shift the power figures use (``--shift``), the
  median minutes from the shift until the alert fires (the window must fill with shifted
  traffic and then hold).

The estimate of every window is computed from the calibration's tables in one matrix pass
(:func:`window_estimates`); a test holds it equal to ``BinaryCalibration.estimate``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.performance_estimation import REFERENCE_ROWS, bin_probabilities, draw  # noqa: E402
from detectors.binning import NumericBins  # noqa: E402
from detectors.performance_estimation import BinaryCalibration, DropRule, fit_binary_calibration  # noqa: E402

ALERT_METRICS = ("roc_auc", "accuracy", "f1")  # the default higher_is_better ∩ estimated metrics
WINDOW_BUCKETS = 60  # the default 1h window of 60 one-minute buckets
DEFAULT_RULE = DropRule()  # the aggregator's default models[].performance_estimation


def window_estimates(cal: BinaryCalibration, counts: np.ndarray) -> dict[str, np.ndarray]:
    """ROC AUC, accuracy and F1 of every row of ``counts`` (windows × fine bins), as
    ``cal.estimate`` computes them one window at a time."""
    c = counts.astype(np.float64)
    q, a, t = cal.table.positive, cal.table.predicted, cal.table.true_positive
    n = c.sum(axis=1)
    tp, pp, p = c @ t, c @ a, c @ q
    fn = p - tp
    tn = n - pp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (tp + tn) / n
        f1 = np.where(pp + p > 0, 2 * tp / (pp + p), 0.0)
        pos = c * q
        neg = c - pos
        p_total, n_total = pos.sum(axis=1), neg.sum(axis=1)
        pos_above = (p_total[:, None] - np.cumsum(pos, axis=1)) + pos / 2
        auc = np.einsum("ij,ij->i", neg, pos_above) / (p_total * n_total)
    auc = np.where((p_total > 0) & (n_total > 0), np.clip(auc, 0.0, 1.0), np.nan)
    return {"roc_auc": auc, "accuracy": accuracy, "f1": f1}


def flagged(cal: BinaryCalibration, counts: np.ndarray, rule: DropRule = DEFAULT_RULE) -> np.ndarray:
    """Per window, whether the drop rule flags any of :data:`ALERT_METRICS`."""
    n = counts.sum(axis=1)
    estimates = window_estimates(cal, counts)
    out = np.zeros(counts.shape[0], dtype=bool)
    for metric in ALERT_METRICS:
        sigma = cal.sigma[metric]
        se = sigma / np.sqrt(np.maximum(n, 1))
        se_ref = sigma / math.sqrt(cal.rows)
        drop = cal.reference[metric] - estimates[metric]
        limit = np.maximum(rule.k * np.sqrt(se**2 + se_ref**2), rule.min_drop)
        out |= (n >= rule.min_samples) & (drop > limit)
    return out


def sliding_windows(buckets: np.ndarray, width: int = WINDOW_BUCKETS) -> np.ndarray:
    """Row i: the sum of buckets i−width+1 … i (the window evaluated after minute i)."""
    total = np.cumsum(buckets, axis=0)
    out = total.copy()
    out[width:] -= total[:-width]
    return out


def episodes(condition: np.ndarray, hold: int) -> tuple[int, int | None]:
    """Alerts started (runs of the condition reaching ``hold`` evaluations) and the first
    evaluation at which one fires (None: never)."""
    started, run, first = 0, 0, None
    for i, hit in enumerate(condition.tolist()):
        run = run + 1 if hit else 0
        if run == hold:
            started += 1
            first = i if first is None else first
    return started, first


@dataclass(frozen=True)
class StreamResult:
    evaluations: int
    condition: int
    episodes: int


def stationary_stream(
    cal: BinaryCalibration, p: np.ndarray, rate: float, minutes: int, hold: int, rng: np.random.Generator
) -> StreamResult:
    """``minutes`` of stationary traffic at ``rate`` a minute, evaluated every minute after the first window."""
    buckets = np.stack([rng.multinomial(k, p) for k in rng.poisson(rate, minutes + WINDOW_BUCKETS)])
    windows = sliding_windows(buckets)[WINDOW_BUCKETS:]
    condition = flagged(cal, windows)
    started, _ = episodes(condition, hold)
    return StreamResult(int(condition.size), int(condition.sum()), started)


def minutes_to_fire(
    cal: BinaryCalibration, p: np.ndarray, shifted: np.ndarray, rate: float, hold: int, rng: np.random.Generator
) -> int | None:
    """Minutes from a covariate shift until the alert fires (None: not within 6 hours)."""
    before = [rng.multinomial(k, p) for k in rng.poisson(rate, WINDOW_BUCKETS)]
    after = [rng.multinomial(k, shifted) for k in rng.poisson(rate, 360)]
    windows = sliding_windows(np.stack(before + after))[WINDOW_BUCKETS:]
    _, first = episodes(flagged(cal, windows), hold)
    return None if first is None else first + 1


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    minutes = int(args.days * 1440)
    for rate in args.rates:
        per_ref: list[StreamResult] = []
        delays: list[int | None] = []
        for r in range(args.references):
            rng = np.random.default_rng([args.seed, int(rate), r])
            scores, outcomes = draw(rng, REFERENCE_ROWS, discrete=False)
            bins = NumericBins.from_reference(scores)
            cal = fit_binary_calibration(bins, scores, outcomes)
            p = bin_probabilities(bins, discrete=False)
            per_ref.append(stationary_stream(cal, p, rate, minutes, args.hold, rng))
            shifted = bin_probabilities(bins, discrete=False, shift=args.shift)
            delays.append(minutes_to_fire(cal, p, shifted, rate, args.hold, rng))
        evaluations = sum(s.evaluations for s in per_ref)
        fired = [d for d in delays if d is not None]
        out[str(rate)] = {
            "window_predictions": rate * WINDOW_BUCKETS,
            "condition": sum(s.condition for s in per_ref) / evaluations,
            "condition_max": max(s.condition / s.evaluations for s in per_ref),
            "episodes_per_day": sum(s.episodes for s in per_ref) / (args.references * args.days),
            "episodes_per_day_max": max(s.episodes for s in per_ref) / args.days,
            "fired_after_shift": len(fired) / len(delays),
            "minutes_to_fire_median": float(np.median(fired)) if fired else None,
        }
    return out


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\n{args.references} references × {args.days:g} days of stationary traffic per rate; "
        f"alert hold {args.hold} evaluations (one a minute); shift {args.shift}\n"
    )
    print(
        "| predictions/min | window | condition (max ref) | alerts per model-day (max ref) | fired after shift | minutes to fire (median) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for rate, r in result.items():
        delay = "—" if r["minutes_to_fire_median"] is None else f"{r['minutes_to_fire_median']:.0f}"
        print(
            f"| {float(rate):g} | {r['window_predictions']:,.0f} | {100 * r['condition']:.3f} % "
            f"({100 * r['condition_max']:.2f} %) | {r['episodes_per_day']:.4f} ({r['episodes_per_day_max']:.3f}) "
            f"| {100 * r['fired_after_shift']:.0f} % | {delay} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--rates", default="25,100,400", help="predictions per minute")
    parser.add_argument("--hold", type=int, default=30, help="evaluations the condition must hold (for: 30m)")
    parser.add_argument("--shift", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",")]
    started = time.perf_counter()
    result = simulate(args)
    print_table(result, args)
    print(f"\n({time.perf_counter() - started:.0f} s; seed {args.seed})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
