"""False alarms (and power) of "estimated performance dropped" on simulated windows.

    python benchmarks/performance_estimation.py [--references 40] [--windows 1000]
        [--sizes 500,1000,5000,20000] [--shift 0.1] [--seed 20261207] [--json PATH]
    python benchmarks/performance_estimation.py --nannyml   # the NannyML comparison tables

Not a timed benchmark: it measures the statistics of the label-free estimate
(detectors/performance_estimation.py) and of the drop rule built on it.

Data: a binary model whose scores come from a two-component beta mixture,
0.4·Beta(5, 2) + 0.6·Beta(2, 5), and whose outcomes follow P(y = 1 | s) = s^1.4 (the
model overstates the positive class, so only the calibration makes estimates right). Two
score processes: ``continuous`` and ``discrete`` (scores rounded to 0.01, as NannyML's
synthetic data are). For each of ``--references`` independent references of 50,000 labelled
records a profile is fitted as ``build_profile`` fits it (bins from the reference, isotonic
calibration, the reference estimate and σ). Windows of each size are then drawn from the
same process — stationary data. A window's estimate depends on its fine-bin counts only, so
the counts are drawn directly, multinomial over the bins with the process's exact bin
probabilities (beta CDFs), which is the distribution folding fresh scores gives.

Per metric and window size it reports, pooled over the references:

* ``sd/se``: the spread of the estimates over the stationary windows divided by the
  reported standard error σ/√n (1.0 = the band is right);
* ``FA k=2`` and ``FA k=3``: how often ``reference − estimate > k·sqrt(se² + se_ref²)``
  (one-sided normal: 2.28 % and 0.135 %), and the largest rate over single references;
* ``FA rule``: the default :class:`DropRule` (k = 3, min_drop = 0.005, min_samples = 500);
* ``any k=3``: a window where at least one of the five metrics fires;
* ``power``: windows from a shifted process (the negatives' Beta(2, 5) moved towards the
  positives', to Beta(2 + 3·shift, 5 − 2·shift): a harder population, same P(y | s)), how
  often the default rule fires, and the true drop of the expected accuracy. Under this
  shift more records pass the threshold, so recall rises and F1 barely moves: a metric
  that does not drop must not fire.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from detectors.binning import NumericBins  # noqa: E402
from detectors.performance_estimation import (  # noqa: E402
    METRICS,
    BinaryCalibration,
    DropRule,
    EstimatedPerformance,
    fit_binary_calibration,
    performance_dropped,
)

REFERENCE_ROWS = 50_000
POSITIVE_SHARE = 0.4


def mixture(shift: float = 0.0) -> tuple[Any, Any]:
    return stats.beta(5, 2), stats.beta(2 + 3 * shift, 5 - 2 * shift)


def draw(rng: np.random.Generator, n: int, discrete: bool, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    high, low = mixture(shift)
    positive_like = rng.uniform(size=n) < POSITIVE_SHARE
    scores = np.where(positive_like, high.rvs(size=n, random_state=rng), low.rvs(size=n, random_state=rng))
    outcomes = rng.uniform(size=n) < scores**1.4
    return (np.round(scores, 2) if discrete else scores), outcomes


def bin_probabilities(bins: NumericBins, discrete: bool, shift: float = 0.0) -> np.ndarray:
    """P(a score falls in each fine bin) under the process, exactly."""
    high, low = mixture(shift)

    def cdf(x: np.ndarray) -> np.ndarray:
        return POSITIVE_SHARE * high.cdf(x) + (1 - POSITIVE_SHARE) * low.cdf(x)

    if discrete:
        values = np.arange(101) / 100
        mass = cdf(np.minimum(values + 0.005, 1.0)) - cdf(np.maximum(values - 0.005, 0.0))
        mass[0], mass[-1] = cdf(0.005), 1 - cdf(0.995)
        p = np.bincount(bins.fine_index(values), weights=mass, minlength=bins.n_fine)
    else:
        p = np.diff(np.concatenate(([0.0], cdf(bins.edges), [1.0])))
    p = np.clip(p, 0.0, None)
    return p / p.sum()


def reference_of(cal: BinaryCalibration) -> EstimatedPerformance:
    return EstimatedPerformance(dict(cal.reference), {m: cal.sigma[m] / math.sqrt(cal.rows) for m in METRICS}, cal.rows)


def simulate(args: argparse.Namespace, discrete: bool) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed + int(discrete))
    rules = {"k2": DropRule(k=2, min_drop=0), "k3": DropRule(k=3, min_drop=0), "rule": DropRule()}
    out: dict[str, Any] = {}
    for n in args.sizes:
        per_ref: list[dict[str, Any]] = []
        estimates: dict[str, list[float]] = {m: [] for m in METRICS}
        ratios: dict[str, list[float]] = {m: [] for m in METRICS}
        power_hits = {m: 0 for m in METRICS}
        true_drop: list[float] = []
        for r in range(args.references):
            ref_rng = np.random.default_rng([args.seed, int(discrete), r])
            scores, outcomes = draw(ref_rng, REFERENCE_ROWS, discrete)
            bins = NumericBins.from_reference(scores)
            cal = fit_binary_calibration(bins, scores, outcomes)
            reference = reference_of(cal)
            p_null = bin_probabilities(bins, discrete)
            p_shift = bin_probabilities(bins, discrete, shift=args.shift)
            fired = {name: dict.fromkeys(METRICS, 0) for name in rules}
            any3 = 0
            values: dict[str, list[float]] = {m: [] for m in METRICS}
            for counts in rng.multinomial(n, p_null, size=args.windows):
                est = cal.estimate(counts)
                for m in METRICS:
                    values[m].append(est.metrics[m])
                hit3 = False
                for name, rule in rules.items():
                    for m, hit in performance_dropped(est, reference, rule).items():
                        fired[name][m] += hit
                        hit3 |= hit and name == "k3"
                any3 += hit3
            for m in METRICS:
                spread = float(np.std(values[m], ddof=1))
                ratios[m].append(spread / (cal.sigma[m] / math.sqrt(n)))
                estimates[m].extend(values[m])
            expected_null = cal.estimate(p_null * n).metrics["accuracy"]
            for counts in rng.multinomial(n, p_shift, size=max(args.windows // 10, 100)):
                est = cal.estimate(counts)
                for m, hit in performance_dropped(est, reference).items():
                    power_hits[m] += hit
            true_drop.append(expected_null - cal.estimate(p_shift * n).metrics["accuracy"])
            per_ref.append({"fired": fired, "any_k3": any3})
        windows = args.windows * args.references
        power_windows = max(args.windows // 10, 100) * args.references
        out[str(n)] = {
            m: {
                "sd_over_se": float(np.mean(ratios[m])),
                "fa_k2": sum(p["fired"]["k2"][m] for p in per_ref) / windows,
                "fa_k2_max": max(p["fired"]["k2"][m] for p in per_ref) / args.windows,
                "fa_k3": sum(p["fired"]["k3"][m] for p in per_ref) / windows,
                "fa_k3_max": max(p["fired"]["k3"][m] for p in per_ref) / args.windows,
                "fa_rule": sum(p["fired"]["rule"][m] for p in per_ref) / windows,
                "power_rule": power_hits[m] / power_windows,
            }
            for m in METRICS
        }
        out[str(n)]["any_k3"] = sum(p["any_k3"] for p in per_ref) / windows
        out[str(n)]["accuracy_drop_shifted"] = float(np.mean(true_drop))
    return out


def print_table(name: str, result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n### {name} scores — {args.references} references × {args.windows} stationary windows per size\n")
    print("| n | metric | sd/se | FA k=2 (max ref) | FA k=3 (max ref) | FA rule | power (shifted) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for n, per in result.items():
        for m in METRICS:
            r = per[m]
            print(
                f"| {int(n):,} | {m} | {r['sd_over_se']:.2f} | {100 * r['fa_k2']:.2f} % ({100 * r['fa_k2_max']:.2f} %) "
                f"| {100 * r['fa_k3']:.3f} % ({100 * r['fa_k3_max']:.2f} %) | {100 * r['fa_rule']:.3f} % "
                f"| {100 * r['power_rule']:.1f} % |"
            )
        print(
            f"| {int(n):,} | any of five, k=3 | | | {100 * per['any_k3']:.3f} % | | "
            f"(accuracy drop {per['accuracy_drop_shifted']:.3f}) |"
        )


def nannyml_tables() -> None:
    from tests.detectors.oracle import cbpe_comparison, nannyml_env

    out, results = nannyml_env.load_results()
    print(f"NannyML {results['nannyml']}, chunks of {results['chunk_size']:,} analysis rows")
    for name in ("synthetic_binary", "car_loan", cbpe_comparison.MULTICLASS):
        profile, chunks = cbpe_comparison.compare(out, results, name)
        print(f"\n### {name} (calibrated by NannyML: {results['datasets'][name]['calibrated']})\n")
        print(cbpe_comparison.markdown_table(profile, chunks))
        se = {m: chunks[0].ours.stderr[m] for m in METRICS}
        nml_se = {m: chunks[0].nannyml_sampling_error[m] for m in METRICS}
        print("\nstandard error at 5,000 rows — ours (of the estimate) / NannyML's (sampling error of the realised):")
        print(", ".join(f"{m} {se[m]:.4f} / {nml_se[m]:.4f}" for m in METRICS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", type=int, default=40)
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--sizes", default="500,1000,5000,20000")
    parser.add_argument("--shift", type=float, default=0.1, help="covariate shift of the power windows")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--nannyml", action="store_true", help="print the NannyML comparison tables instead")
    args = parser.parse_args(argv)
    if args.nannyml:
        nannyml_tables()
        return 0
    args.sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    results = {name: simulate(args, discrete) for name, discrete in (("continuous", False), ("discrete", True))}
    for name, result in results.items():
        print_table(name, result, args)
    print(f"\n({time.perf_counter() - started:.0f} s; seed {args.seed})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
