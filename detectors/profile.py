"""The reference profile: everything drift is measured against, frozen at build time.

A profile holds one summary per feature (with the bins frozen from the reference), the
prediction and label summaries, the reference performance, the per-record loss
summary, and metadata. It converts to and from one Arrow table, one row per summary,
with the metadata as JSON in the schema; writing that table to Parquet is the
exporter's business. Clocks are not read here: ``created_at`` is passed in.

A classifier's profile built from scores and labels also holds a **calibration** for
label-free performance estimation (:mod:`detectors.performance_estimation`): the isotonic
map and its tables over the prediction's fine bins, as JSON under the schema metadata key
``model_health.calibration``; a multiclass one adds one ``class_score`` row per class (the
fine bins of that class's score column). Both are additions a reader of format 1 without
them ignores, and a profile without them loads with ``calibration=None``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from detectors.binning import (
    DEFAULT_FINE_BINS,
    DEFAULT_PSI_BINS,
    DEFAULT_TOP_K,
    CategoricalBins,
    NumericBins,
)
from detectors.columns import (
    ColumnError,
    as_strings,
    category_counts,
    is_categorical_type,
    is_numeric_type,
    numeric_values,
    require_columns,
)
from detectors.drift_statistics import Kind
from detectors.exact_sum import ExactSum
from detectors.performance import ClassificationSummary, RegressionSummary, per_record_loss
from detectors.performance_estimation import (
    DEFAULT_THRESHOLD,
    BinaryCalibration,
    Calibration,
    calibration_from_json,
    calibration_to_json,
    fit_binary_calibration,
    fit_multiclass_calibration,
)
from detectors.psi import DEFAULT_EPSILON
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary

FORMAT_VERSION = 1
METADATA_KEY = b"model_health.profile"
CALIBRATION_KEY = b"model_health.calibration"
Task = Literal["classification", "regression"]
PerformanceSummary = ClassificationSummary | RegressionSummary


def performance_from_json(task: str | None, text: str | bytes) -> PerformanceSummary:
    """A stored performance summary (its ``to_dict`` as JSON), of the kind the task folds."""
    return performance_from_dict(task, json.loads(text))


def performance_from_dict(task: str | None, document: dict[str, Any]) -> PerformanceSummary:
    """A performance summary from its ``to_dict`` form, of the kind the task folds."""
    summary_cls = ClassificationSummary if task == "classification" else RegressionSummary
    return summary_cls.from_dict(document)


_CLASSIFICATION_MAX_INT_CLASSES = 20


class ProfileFormatError(ValueError):
    """A table that is not a profile, or one written by an incompatible version."""


@dataclass(frozen=True)
class ProfileSettings:
    """How the reference was binned; every summary compared to it must use the same."""

    fine_bins: int = DEFAULT_FINE_BINS
    psi_bins: int = DEFAULT_PSI_BINS
    top_k: int = DEFAULT_TOP_K
    epsilon: float = DEFAULT_EPSILON


@dataclass(frozen=True)
class ProfileMetadata:
    model: str
    model_version: str
    created_at: float
    rows: int
    features: tuple[str, ...]
    kinds: dict[str, Kind]
    trained_at: float | None = None
    prediction: str | None = None
    label: str | None = None
    task: Task | None = None
    classes: tuple[str, ...] = ()
    positive: str | None = None
    performance: dict[str, float] = field(default_factory=dict)
    settings: ProfileSettings = ProfileSettings()
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["performance"] = {k: (None if math.isnan(v) else v) for k, v in self.performance.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProfileMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileFormatError(f"profile metadata is not JSON: {exc}") from None
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ProfileFormatError(
                f"profile format version {version} is not supported (this build reads {FORMAT_VERSION}); "
                "rebuild it with 'model-health reference build'"
            )
        try:
            data["features"] = tuple(data["features"])
            data["classes"] = tuple(data["classes"])
            data["settings"] = ProfileSettings(**data["settings"])
            data["performance"] = {k: (math.nan if v is None else v) for k, v in data["performance"].items()}
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise ProfileFormatError(f"profile metadata is incomplete: {exc}") from None


@dataclass(frozen=True)
class ReferenceProfile:
    metadata: ProfileMetadata
    features: dict[str, ColumnSummary]
    prediction: ColumnSummary | None = None
    label: ColumnSummary | None = None
    loss: NumericSummary | None = None
    performance: PerformanceSummary | None = None
    # Label-free performance estimation: the calibration, and for a multiclass task the
    # reference summary of each class's score column (keyed by class).
    calibration: Calibration | None = None
    class_scores: dict[str, NumericSummary] = field(default_factory=dict)

    def to_table(self) -> pa.Table:
        """One row per summary; metadata JSON under ``model_health.profile``."""
        rows = [summary_to_row(name, "feature", s) for name, s in self.features.items()]
        for role, summary in (("prediction", self.prediction), ("label", self.label), ("loss", self.loss)):
            if summary is not None:
                rows.append(summary_to_row(role, role, summary))
        rows.extend(summary_to_row(name, "class_score", s) for name, s in self.class_scores.items())
        table = pa.Table.from_pylist(rows, schema=SUMMARY_ROW_SCHEMA)
        metadata = {METADATA_KEY: self.metadata.to_json().encode()}
        if self.performance is not None:
            metadata[b"model_health.performance"] = json.dumps(self.performance.to_dict(), sort_keys=True).encode()
        if self.calibration is not None:
            metadata[CALIBRATION_KEY] = calibration_to_json(self.calibration).encode()
        return table.replace_schema_metadata(metadata)

    @classmethod
    def from_table(cls, table: pa.Table) -> ReferenceProfile:
        schema_metadata = table.schema.metadata or {}
        if METADATA_KEY not in schema_metadata:
            raise ProfileFormatError("not a model-health profile (no profile metadata)")
        metadata = ProfileMetadata.from_json(schema_metadata[METADATA_KEY].decode())
        if not set(SUMMARY_ROW_SCHEMA.names) <= set(table.column_names):
            raise ProfileFormatError("profile table lacks summary columns")
        features: dict[str, ColumnSummary] = {}
        by_role: dict[str, ColumnSummary] = {}
        class_scores: dict[str, NumericSummary] = {}
        for row in table.to_pylist():
            summary = summary_from_row(row)
            if row["role"] == "feature":
                features[row["name"]] = summary
            elif row["role"] == "class_score" and isinstance(summary, NumericSummary):
                class_scores[row["name"]] = summary
            else:
                by_role[row["role"]] = summary
        performance: PerformanceSummary | None = None
        raw = schema_metadata.get(b"model_health.performance")
        if raw is not None:
            performance = performance_from_json(metadata.task, raw)
        loss = by_role.get("loss")
        calibration = _read_calibration(schema_metadata.get(CALIBRATION_KEY), by_role.get("prediction"), class_scores)
        return cls(
            metadata,
            features,
            by_role.get("prediction"),
            by_role.get("label"),
            loss if isinstance(loss, NumericSummary) else None,
            performance,
            calibration,
            class_scores,
        )


def _read_calibration(
    raw: bytes | None, prediction: ColumnSummary | None, class_scores: dict[str, NumericSummary]
) -> Calibration | None:
    """The stored calibration, checked against the bins it was fitted over."""
    if raw is None:
        return None
    try:
        calibration = calibration_from_json(raw.decode())
    except ValueError as exc:
        raise ProfileFormatError(f"profile calibration: {exc}") from None
    if isinstance(calibration, BinaryCalibration):
        if not isinstance(prediction, NumericSummary) or prediction.bins.n_fine != calibration.table.n_bins:
            raise ProfileFormatError("profile calibration does not match the prediction column's bins")
    else:
        for name in calibration.classes:
            summary = class_scores.get(name)
            if summary is None or summary.bins.n_fine != calibration.positive[name].size:
                raise ProfileFormatError(f"profile calibration does not match the score bins of class {name!r}")
    return calibration


# The columns ``summary_counts`` fills: every table that stores summaries (profiles,
# checkpoints, the sidecar's summary messages) carries them, in this order.
SUMMARY_COUNT_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("counts", pa.list_(pa.int64())),
    ("missing", pa.int64()),
    ("total", pa.string()),
    ("total_squares", pa.string()),
    ("minimum", pa.float64()),
    ("maximum", pa.float64()),
    ("lower_tail_total", pa.string()),
    ("upper_tail_total", pa.string()),
)

SUMMARY_ROW_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("role", pa.string()),
        ("kind", pa.string()),
        ("edges", pa.list_(pa.float64())),
        ("coarse_of_fine", pa.list_(pa.int64())),
        ("fine_bins", pa.int64()),
        ("psi_bins", pa.int64()),
        ("categories", pa.list_(pa.string())),
        ("top_k", pa.int64()),
        *SUMMARY_COUNT_FIELDS,
    ]
)


def summary_counts(summary: ColumnSummary) -> dict[str, Any]:
    """A summary's counts and sums as plain values (its bins apart): what changes per window."""
    row: dict[str, Any] = {"counts": summary.counts.tolist(), "missing": summary.missing}
    if isinstance(summary, NumericSummary):
        row.update(
            total=summary.total.to_text(),
            total_squares=summary.total_squares.to_text(),
            minimum=summary.minimum,
            maximum=summary.maximum,
            lower_tail_total=summary.lower_tail_total.to_text(),
            upper_tail_total=summary.upper_tail_total.to_text(),
        )
    return row


def summary_with_counts(values: dict[str, Any], bins: NumericBins | CategoricalBins) -> ColumnSummary:
    """The inverse of :func:`summary_counts`, over bins known from elsewhere."""
    counts = np.asarray(values["counts"], dtype=np.int64)
    if isinstance(bins, CategoricalBins):
        return CategoricalSummary(bins, counts, values["missing"])
    return NumericSummary(
        bins,
        counts,
        values["missing"],
        ExactSum.from_text(values["total"]),
        ExactSum.from_text(values["total_squares"]),
        values["minimum"],
        values["maximum"],
        ExactSum.from_text(values["lower_tail_total"]),
        ExactSum.from_text(values["upper_tail_total"]),
    )


def summary_to_row(name: str, role: str, summary: ColumnSummary) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "role": role, **summary_counts(summary)}
    if isinstance(summary, NumericSummary):
        row.update(
            kind="numeric",
            edges=summary.bins.edges.tolist(),
            coarse_of_fine=summary.bins.coarse_of_fine.tolist(),
            fine_bins=summary.bins.fine_bins,
            psi_bins=summary.bins.psi_bins,
        )
    else:
        row.update(kind="categorical", categories=list(summary.bins.categories), top_k=summary.bins.top_k)
    return row


def summary_from_row(row: dict[str, Any]) -> ColumnSummary:
    bins: NumericBins | CategoricalBins
    if row["kind"] == "numeric":
        bins = NumericBins(
            np.asarray(row["edges"], dtype=np.float64),
            np.asarray(row["coarse_of_fine"], dtype=np.int64),
            row["fine_bins"],
            row["psi_bins"],
        )
    elif row["kind"] == "categorical":
        bins = CategoricalBins(tuple(row["categories"]), row["top_k"])
    else:
        raise ProfileFormatError(f"unknown summary kind {row['kind']!r} for {row['name']!r}")
    return summary_with_counts(row, bins)


def column_kind(table: pa.Table, name: str, categorical: frozenset[str]) -> Kind:
    """Categorical if named so or stored as text/bool; numeric for numbers; else an error."""
    kind = table.column(name).type
    if name in categorical or is_categorical_type(kind):
        return "categorical"
    if is_numeric_type(kind):
        return "numeric"
    raise ColumnError(f"column {name!r} has type {kind}, which is neither numeric nor categorical")


def summarise_reference(table: pa.Table, name: str, kind: Kind, settings: ProfileSettings) -> ColumnSummary:
    """Freeze bins from a reference column and fold the column into them."""
    if kind == "categorical":
        names, counts, missing = category_counts(table, name)
        if not names:
            raise ColumnError(f"column {name!r} has no values in the reference")
        bins = CategoricalBins.from_counts(names, counts, settings.top_k)
        return CategoricalSummary.from_counts(bins, names, counts, missing)
    return numeric_reference_summary(name, numeric_values(table, name), settings)


def numeric_reference_summary(name: str, values: np.ndarray, settings: ProfileSettings) -> NumericSummary:
    if not np.isfinite(values).any():
        raise ColumnError(f"column {name!r} has no finite values in the reference")
    return NumericSummary.fold(NumericBins.from_reference(values, settings.fine_bins, settings.psi_bins), values)


def summarise_current(table: pa.Table, name: str, reference: ColumnSummary) -> ColumnSummary:
    """Fold a current column into the reference's frozen bins."""
    if isinstance(reference, CategoricalSummary):
        names, counts, missing = category_counts(table, name)
        return CategoricalSummary.from_counts(reference.bins, names, counts, missing)
    return NumericSummary.fold(reference.bins, numeric_values(table, name))


def _infer_task(table: pa.Table, label: str) -> Task:
    column = table.column(label)
    if is_categorical_type(column.type):
        return "classification"
    if pa.types.is_integer(column.type):
        distinct = len(column.drop_null().unique())
        return "classification" if distinct <= _CLASSIFICATION_MAX_INT_CLASSES else "regression"
    return "regression"


def _positive_class(classes: tuple[str, ...]) -> str | None:
    if len(classes) != 2:
        return None
    for candidate in ("1", "true", "True", "yes", "positive"):
        if candidate in classes:
            return candidate
    return classes[1]


def _performance(
    table: pa.Table, prediction: str, label: str, task: Task, threshold: float = DEFAULT_THRESHOLD
) -> tuple[PerformanceSummary, NumericSummary | None, tuple[str, ...], str | None]:
    """Reference performance summary, per-record loss summary, classes and positive label."""
    if task == "regression":
        y_true = numeric_values(table, label)
        y_pred = numeric_values(table, prediction)
        loss = per_record_loss("regression", y_true, y_pred)
        return RegressionSummary.fold(y_true, y_pred), _loss_summary(loss), (), None
    import pyarrow.compute as pc  # text labels only (see detectors.columns)

    label_strings = as_strings(table, label)
    labels = label_strings.to_numpy(zero_copy_only=False)
    present = label_strings.is_valid().to_numpy(zero_copy_only=False)
    scores = numeric_values(table, prediction) if is_numeric_type(table.column(prediction).type) else None
    seen = set(pc.unique(label_strings.drop_null()).to_pylist())
    if scores is None:
        predicted_strings = as_strings(table, prediction)
        predicted = predicted_strings.to_numpy(zero_copy_only=False)
        present &= predicted_strings.is_valid().to_numpy(zero_copy_only=False)
        seen |= set(pc.unique(predicted_strings.drop_null()).to_pylist())
    classes = tuple(sorted(seen))
    positive = _positive_class(classes)
    if scores is not None:
        if positive is None:
            raise ColumnError(f"numeric prediction {prediction!r} is read as a score, which needs exactly two classes")
        negative = classes[0] if classes[1] == positive else classes[1]
        present &= np.isfinite(scores)
        predicted = np.where(scores >= threshold, positive, negative)
    y_true = labels[present].astype(str)
    y_pred = predicted[present].astype(str)
    kept_scores = scores[present] if scores is not None else None
    summary = ClassificationSummary.fold(classes, y_true, y_pred, scores=kept_scores, positive=positive)
    if kept_scores is not None:
        loss = per_record_loss("classification", y_true, kept_scores, positive=positive)
    else:
        loss = per_record_loss("classification", y_true, y_pred)
    return summary, _loss_summary(loss), classes, positive


def _loss_summary(loss: np.ndarray) -> NumericSummary | None:
    finite = loss[np.isfinite(loss)]
    if finite.size == 0:
        return None
    return NumericSummary.fold(NumericBins.from_reference(finite), loss)


def build_profile(
    table: pa.Table,
    *,
    model: str,
    model_version: str,
    created_at: float,
    features: list[str] | None = None,
    categorical: list[str] | tuple[str, ...] = (),
    prediction: str | None = None,
    label: str | None = None,
    trained_at: float | None = None,
    task: Task | None = None,
    settings: ProfileSettings = ProfileSettings(),
    threshold: float = DEFAULT_THRESHOLD,
    class_scores: dict[str, str] | None = None,
) -> ReferenceProfile:
    """Build a profile from a reference table.

    ``features`` defaults to every column other than the prediction, the label and the
    class score columns. Raises :class:`ColumnError` naming the column for anything it
    cannot use.

    A binary classifier whose ``prediction`` is a numeric score gets a calibration for
    label-free estimation; ``threshold`` is the score at or above which it predicts the
    positive class (0.5 by default). A multiclass classifier gets one when
    ``class_scores`` maps each class to its score column (``prediction`` then holds the
    predicted class).
    """
    if table.num_rows == 0:
        raise ColumnError("the reference has no rows")
    score_columns = dict(class_scores or {})
    roles = [c for c in (prediction, label) if c] + [c for c in score_columns.values() if c not in (prediction, label)]
    names = list(features) if features else [c for c in table.column_names if c not in roles]
    if not names:
        raise ColumnError("no feature columns to profile")
    require_columns(table, names + roles + [c for c in categorical if c not in names + roles])
    categorical_set = frozenset(categorical)
    kinds: dict[str, Kind] = {}
    summaries: dict[str, ColumnSummary] = {}
    for name in names:
        kinds[name] = column_kind(table, name, categorical_set)
        summaries[name] = summarise_reference(table, name, kinds[name], settings)

    prediction_summary = label_summary = None
    performance: PerformanceSummary | None = None
    loss: NumericSummary | None = None
    classes: tuple[str, ...] = ()
    positive: str | None = None
    if label and not task:
        task = _infer_task(table, label)
    if prediction:
        kinds[prediction] = column_kind(table, prediction, categorical_set)
        prediction_summary = summarise_reference(table, prediction, kinds[prediction], settings)
    if label:
        label_kind: Kind = "categorical" if task == "classification" else "numeric"
        kinds[label] = label_kind
        label_summary = summarise_reference(table, label, label_kind, settings)
    calibration: Calibration | None = None
    class_summaries: dict[str, NumericSummary] = {}
    if prediction and label and task:
        performance, loss, classes, positive = _performance(table, prediction, label, task, threshold)
        if task == "classification":
            calibration, class_summaries = _calibration(
                table, prediction, label, positive, threshold, score_columns, prediction_summary, settings
            )

    metadata = ProfileMetadata(
        model=model,
        model_version=model_version,
        created_at=float(created_at),
        rows=table.num_rows,
        features=tuple(names),
        kinds=kinds,
        trained_at=None if trained_at is None else float(trained_at),
        prediction=prediction,
        label=label,
        task=task if label else None,
        classes=classes,
        positive=positive,
        performance=performance.metrics() if performance is not None else {},
        settings=settings,
    )
    return ReferenceProfile(
        metadata, summaries, prediction_summary, label_summary, loss, performance, calibration, class_summaries
    )


def _calibration(
    table: pa.Table,
    prediction: str,
    label: str,
    positive: str | None,
    threshold: float,
    class_scores: dict[str, str],
    prediction_summary: ColumnSummary | None,
    settings: ProfileSettings,
) -> tuple[Calibration | None, dict[str, NumericSummary]]:
    """Fit label-free estimation where the reference allows it (see :func:`build_profile`)."""
    labels = as_strings(table, label)
    present = labels.is_valid().to_numpy(zero_copy_only=False)
    label_values = labels.to_numpy(zero_copy_only=False)
    if class_scores:
        if len(class_scores) < 2:
            raise ColumnError("class_scores needs a score column for each of at least two classes")
        predicted = as_strings(table, prediction)
        present &= predicted.is_valid().to_numpy(zero_copy_only=False)
        scores = {name: numeric_values(table, column)[present] for name, column in class_scores.items()}
        summaries = {name: numeric_reference_summary(class_scores[name], s, settings) for name, s in scores.items()}
        calibration = fit_multiclass_calibration(
            {name: s.bins for name, s in summaries.items()},
            scores,
            label_values[present].astype(str),
            predicted.to_numpy(zero_copy_only=False)[present].astype(str),
            class_scores,
        )
        return calibration, summaries
    if positive is None or not isinstance(prediction_summary, NumericSummary):
        return None, {}  # a predicted class without scores: nothing to calibrate
    scores = numeric_values(table, prediction)[present]
    is_positive = label_values[present].astype(str) == positive
    return fit_binary_calibration(prediction_summary.bins, scores, is_positive, threshold, positive), {}
