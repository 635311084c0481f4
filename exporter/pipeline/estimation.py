"""Label-free performance of a window: the CBPE estimate from its prediction scores.

A profile built from scores and labels carries a calibration
(:mod:`detectors.performance_estimation`); the window's score summary, over the profile's
prediction bins, is all the estimate needs. It is computed for every window on every
evaluation, labels or not: while labels are missing it is the only performance figure, and
once they arrive it stays beside the realised one (the ConceptDrift alert reads the estimate
only while too few labels have been joined).

Multiclass profiles are left out here: their estimate needs per-class score histograms,
which the record format does not carry yet (docs/performance-estimation.md, *Limits*).
"""

from __future__ import annotations

from detectors.performance_estimation import (
    BinaryCalibration,
    DropRule,
    EstimatedPerformance,
    estimate_performance,
    performance_dropped,
    reference_estimate,
)
from detectors.profile import ReferenceProfile
from detectors.summary import ColumnSummary, NumericSummary


def estimate_window(
    profile: ReferenceProfile, prediction: ColumnSummary | None, rule: DropRule
) -> tuple[EstimatedPerformance | None, dict[str, bool]]:
    """The window's estimate and, per metric, whether it dropped below the reference's.

    ``(None, {})`` when the profile has no binary calibration or the window no scores.
    """
    if not isinstance(profile.calibration, BinaryCalibration):
        return None, {}
    if not isinstance(prediction, NumericSummary) or prediction.count == 0:
        return None, {}
    estimate = estimate_performance(profile, prediction)
    return estimate, performance_dropped(estimate, reference_estimate(profile), rule)
