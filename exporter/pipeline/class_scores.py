"""A multiclass model's per-class scores in its windows: what live label-free estimation needs.

A profile built with ``reference build --class-scores a=score_a,b=score_b,…`` carries a
one-vs-rest calibration (:class:`detectors.performance_estimation.MulticlassCalibration`) that
names each class's score column. Live records carry those columns as features under the same
names (a record's ``features.score_a``, column ``f.score_a``), or log the prediction as a
probability vector, whose position ``k`` the decoders keep as column ``p.k`` and whose
predicted class they name ``k`` (classes ``0``, ``1``, … then: ``--class-scores 0=p0,1=p1,…``).
Neither is a drift feature of the profile, so the feature fold leaves them alone and this
module folds them instead.

Per class ``k``, two summaries over the profile's bins for ``k`` go into each bucket: ``k``'s
score over every record, and over the records whose predicted class is ``k``
(:class:`~detectors.performance_estimation.ClassScores`). They ride in the bucket's feature
map under keys no feature can have (``"\\x00score:k"``, ``"\\x00predicted:k"``), so buckets,
packing, summary messages, checkpoints and scale-out partials carry them with no format of
their own; :func:`reference_of` gives their bins wherever a stored summary is read back.

A batch lacking any class's score column folds none of them (the estimate needs all), and
its rows stay out of the estimate: the window's estimate counts only the records that had
every class's score (``EstimatedPerformance.count``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from detectors.performance_estimation import ClassScores, MulticlassCalibration
from detectors.profile import ReferenceProfile
from detectors.summary import ColumnSummary, NumericSummary
from exporter.records import PROBABILITY_PREFIX, feature_column, probability_column

SCORE_KEY = "\x00score:"  # + class: that class's score over every record
PREDICTED_KEY = "\x00predicted:"  # + class: over the records that predicted that class


def multiclass(profile: ReferenceProfile) -> MulticlassCalibration | None:
    calibration = profile.calibration
    return calibration if isinstance(calibration, MulticlassCalibration) else None


def reference_of(profile: ReferenceProfile, name: str) -> ColumnSummary | None:
    """The reference summary a stored bucket entry named ``name`` is over: a feature's, or
    a class score's for the two class-score keys (None when the profile has neither)."""
    found = profile.features.get(name)
    if found is not None or not name.startswith("\x00"):
        return found
    for prefix in (SCORE_KEY, PREDICTED_KEY):
        if name.startswith(prefix):
            return profile.class_scores.get(name[len(prefix) :])
    return None


def fold_class_scores(
    profile: ReferenceProfile, table: pa.Table, order: np.ndarray | None, bounds: np.ndarray
) -> list[dict[str, NumericSummary]]:
    """Per slot group (``order``/``bounds`` as the bucket fold groups rows), the class-score
    summaries to add to its bucket's feature map; empty dicts when the profile is not
    multiclass or the table lacks a class's score column."""
    groups = bounds.size - 1
    calibration = multiclass(profile)
    if calibration is None:
        return [{} for _ in range(groups)]
    columns = _score_columns(calibration, table.column_names)
    if columns is None:
        return [{} for _ in range(groups)]
    scores = {k: _floats(table.column(c)) for k, c in columns.items()}
    if all(c.startswith(PROBABILITY_PREFIX) for c in columns.values()):
        # A probability vector names its predicted class by position (whatever class text a
        # producer logged beside it): class k where p.k is largest.
        matrix = np.stack([scores[k] for k in calibration.classes], axis=1)
        best = np.argmax(np.where(np.isnan(matrix), -np.inf, matrix), axis=1)
        predicted = np.asarray(calibration.classes, dtype=object)[best]
        predicted[np.isnan(matrix).all(axis=1)] = None
    else:
        predicted = (
            np.asarray(table.column("prediction_class").to_pylist(), dtype=object)
            if "prediction_class" in table.column_names
            else np.full(table.num_rows, None, dtype=object)
        )
    if order is not None:
        predicted = predicted[order]
        scores = {k: s[order] for k, s in scores.items()}
    bins = {k: profile.class_scores[k].bins for k in calibration.classes}
    out: list[dict[str, NumericSummary]] = []
    for g in range(groups):
        rows = slice(int(bounds[g]), int(bounds[g + 1]))
        folded = ClassScores.fold(bins, {k: s[rows] for k, s in scores.items()}, predicted[rows])
        entry = {SCORE_KEY + k: s for k, s in folded.scores.items()}
        entry.update({PREDICTED_KEY + k: s for k, s in folded.predicted.items()})
        out.append(entry)
    return out


def _score_columns(calibration: MulticlassCalibration, names: list[str]) -> dict[str, str] | None:
    """Each class's score column in a decoded table: the profile's column among the features,
    else the class's position in a logged probability vector (``p.k`` for class ``k``)."""
    found = {}
    for k in calibration.classes:
        named, position = feature_column(calibration.columns[k]), probability_column(k)
        column = named if named in names else position if position in names else None
        if column is None:
            return None
        found[k] = column
    return found


def window_class_scores(profile: ReferenceProfile, features: Mapping[str, ColumnSummary]) -> ClassScores | None:
    """The window's :class:`ClassScores` from its summed bucket's feature map, or None when
    the profile is not multiclass or no record of the window carried every class's score."""
    calibration = multiclass(profile)
    if calibration is None:
        return None
    scores, predicted = {}, {}
    for k in calibration.classes:
        score, mine = features.get(SCORE_KEY + k), features.get(PREDICTED_KEY + k)
        if not isinstance(score, NumericSummary) or not isinstance(mine, NumericSummary):
            return None
        scores[k], predicted[k] = score, mine
    return ClassScores(scores, predicted)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A score column as float64, NaN where null or not a number (the fold counts those as missing)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray([_number(v) for v in column.to_pylist()], dtype=np.float64)
    values = column.cast(pa.float64()) if column.type != pa.float64() else column
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except ValueError:
        return float("nan")
