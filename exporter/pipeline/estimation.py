"""Label-free performance of a window: the CBPE estimate from its prediction scores.

A profile built from scores and labels carries a calibration
(:mod:`detectors.performance_estimation`); the window's score summary, over the profile's
prediction bins, is all the estimate needs. It is computed for every window on every
evaluation, labels or not: while labels are missing it is the only performance figure, and
once they arrive it stays beside the realised one (the ConceptDrift alert reads the estimate
only while too few labels have been joined).

A multiclass profile's estimate reads the window's per-class score summaries
(:mod:`exporter.pipeline.class_scores`), folded from the class score columns the records carry.
"""

from __future__ import annotations

from detectors.performance_estimation import (
    BinaryCalibration,
    ClassScores,
    DropRule,
    EstimatedPerformance,
    estimate_performance,
    performance_dropped,
    reference_estimate,
)
from detectors.profile import ReferenceProfile
from detectors.summary import NumericSummary
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.class_scores import window_class_scores


def estimate_window(
    profile: ReferenceProfile, window: Bucket, rule: DropRule
) -> tuple[EstimatedPerformance | None, dict[str, bool]]:
    """The window's estimate and, per metric, whether it dropped below the reference's.

    ``(None, {})`` when the profile has no calibration or the window no scores (binary: the
    prediction score; multiclass: every class's score column).
    """
    source: NumericSummary | ClassScores | None
    if isinstance(profile.calibration, BinaryCalibration):
        source = window.prediction if isinstance(window.prediction, NumericSummary) else None
        rows = source.count if source is not None else 0
    else:
        source = window_class_scores(profile, window.features)
        rows = next(iter(source.scores.values())).count if source is not None else 0
    if source is None or rows == 0:
        return None, {}
    estimate = estimate_performance(profile, source)
    return estimate, performance_dropped(estimate, reference_estimate(profile), rule)
