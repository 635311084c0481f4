"""ConceptDrift's estimated half on simulated streams (benchmarks/concept_drift_alert.py, small).

The benchmark's full run (docs/rollouts.md and docs/performance-estimation.md quote it) is
minutes long; this is the same simulation at a size a test can afford, with bounds loose enough
for its sample yet far below what a broken rule or hold would give: on stationary traffic the
condition holds on well under 1.5 % of evaluations and an alert (30 evaluations held) starts on
fewer than one model-day in four; after the benchmark's covariate shift every stream fires
within two hours.
"""

from __future__ import annotations

import numpy as np

from benchmarks.concept_drift_alert import (
    ALERT_METRICS,
    episodes,
    minutes_to_fire,
    sliding_windows,
    stationary_stream,
    window_estimates,
)
from benchmarks.performance_estimation import REFERENCE_ROWS, bin_probabilities, draw
from detectors.binning import NumericBins
from detectors.performance_estimation import fit_binary_calibration


def _reference(seed: int):
    rng = np.random.default_rng([20261207, seed])
    scores, outcomes = draw(rng, REFERENCE_ROWS, discrete=False)
    bins = NumericBins.from_reference(scores)
    return fit_binary_calibration(bins, scores, outcomes), bins, rng


def test_the_matrix_estimate_is_the_calibrations_estimate():
    cal, bins, rng = _reference(0)
    counts = rng.multinomial(3_000, bin_probabilities(bins, discrete=False), size=20)
    estimates = window_estimates(cal, counts)
    for row, window in enumerate(counts):
        expected = cal.estimate(window).metrics
        for metric in ALERT_METRICS:
            assert (
                estimates[metric][row] == np.float64(expected[metric])
                or abs(estimates[metric][row] - expected[metric]) < 1e-12
            )


def test_sliding_windows_and_holds():
    buckets = np.arange(10).reshape(5, 2)
    assert sliding_windows(buckets, 2).tolist() == [[0, 1], [2, 4], [6, 8], [10, 12], [14, 16]]
    assert episodes(np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1], dtype=bool), 3) == (2, 5)
    assert episodes(np.zeros(5, dtype=bool), 1) == (0, None)


def test_stationary_streams_rarely_alert_and_a_shift_fires_within_two_hours():
    evaluations = condition = started = 0
    delays = []
    for seed in range(4):
        cal, bins, rng = _reference(seed)
        p = bin_probabilities(bins, discrete=False)
        result = stationary_stream(cal, p, rate=100, minutes=2 * 1440, hold=30, rng=rng)
        evaluations += result.evaluations
        condition += result.condition
        started += result.episodes
        delays.append(minutes_to_fire(cal, p, bin_probabilities(bins, False, shift=0.1), 100, 30, rng))
    assert condition / evaluations < 0.015, f"condition held on {condition}/{evaluations} evaluations"
    assert started / (4 * 2) < 0.25, f"{started} alerts in 8 model-days"
    assert all(d is not None and d <= 120 for d in delays), delays
