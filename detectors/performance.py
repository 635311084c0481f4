"""Model performance: offline metrics on arrays, and mergeable performance summaries.

Offline functions take the raw arrays (ground truth and predictions or scores) and
agree with ``sklearn.metrics`` (``zero_division=0``). The summaries hold only integer
counts and exact sums, so they merge like the drift summaries do:
``fold(a) + fold(b) == fold(a ∪ b)`` exactly, and their metrics equal the offline ones
on the same records (the ROC AUC up to a stated histogram error bound).

Conventions shared by everything here:

* empty input gives ``nan``; a precision, recall or F1 whose denominator is zero is 0.0;
* a ROC AUC with no positive or no negative record is ``nan`` (it is undefined);
* probabilities are clipped into ``[eps, 1 − eps]`` before the log loss;
* means come from :class:`~detectors.exact_sum.ExactSum`, rounded once, so an offline
  mean and the mean of merged summaries are the same float.

Summaries compare labels as strings (``str(label)``), because profiles store them as
JSON strings; the offline functions compare the raw values, as sklearn does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from detectors.binning import OTHER
from detectors.exact_sum import ExactSum

Average = Literal["binary", "macro"]
Task = Literal["classification", "regression"]

LOG_LOSS_EPS = 1e-15
DEFAULT_SCORE_BINS = 1000

# --------------------------------------------------------------------------- helpers


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if t.size != p.size:
        raise ValueError(f"y_true has {t.size} records but the predictions have {p.size}")
    return t, p


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, or 0.0 when the denominator is 0 (sklearn zero_division=0)."""
    return numerator / denominator if denominator else 0.0


def _f1(tp: int, fp: int, fn: int) -> float:
    # 2·tp / (2·tp + fp + fn) is the harmonic mean of precision and recall without
    # their two roundings, and is 0 exactly when either of them is.
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _mean(values: list[float]) -> float:
    # fsum is correctly rounded, so the macro average does not depend on label order.
    return math.fsum(values) / len(values) if values else 0.0


def _binary_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _f1(tp, fp, fn)}


def _macro_scores(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Macro averages over the given labels from per-label tp, predicted and true counts."""
    pairs = [(int(a), int(b), int(c)) for a, b, c in zip(tp, predicted, actual)]
    return {
        "precision": _mean([_ratio(t, p) for t, p, _ in pairs]),
        "recall": _mean([_ratio(t, a) for t, _, a in pairs]),
        "f1": _mean([_f1(t, p - t, a - t) for t, p, a in pairs]),
    }


def _classification_scores(y_true: Any, y_pred: Any, positive: object, average: Average) -> dict[str, float] | None:
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return None
    if average == "binary":
        true_pos = t == positive
        pred_pos = p == positive
        tp = int(np.count_nonzero(true_pos & pred_pos))
        return _binary_scores(tp, int(np.count_nonzero(pred_pos)) - tp, int(np.count_nonzero(true_pos)) - tp)
    if average == "macro":
        # Labels are those seen in either array, as sklearn's ``unique_labels``.
        labels, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
        codes = codes.ravel()
        tc, pc = codes[: t.size], codes[t.size :]
        k = labels.size
        matched = np.bincount(tc[tc == pc], minlength=k)
        return _macro_scores(matched, np.bincount(pc, minlength=k), np.bincount(tc, minlength=k))
    raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")


def _finite_scores(scores: Any, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size != n:
        raise ValueError(f"y_true has {n} records but the scores have {s.size}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; drop unscored records first")
    return s


def _log_losses(is_positive: np.ndarray, prob: np.ndarray, eps: float) -> np.ndarray:
    """Per-record −log of the clipped probability given to the true outcome."""
    p = np.clip(prob, eps, 1.0 - eps)
    # log1p(−p) keeps its precision for small p, where 1 − p would round.
    return np.where(is_positive, -np.log(p), -np.log1p(-p))


def _mann_whitney_twice(is_positive: np.ndarray, scores: np.ndarray) -> int:
    """2·U, U = #(pos > neg) + ½·#(pos = neg) over all pairs, in exact integers."""
    _, codes, counts = np.unique(scores, return_inverse=True, return_counts=True)
    start = np.cumsum(counts) - counts  # 0-based position of each distinct value
    # Average 1-based rank of a tied group is start + (c + 1)/2; twice that is an integer.
    twice_rank = 2 * start + counts + 1
    positives = int(np.count_nonzero(is_positive))
    twice_rank_sum = int(twice_rank[codes.ravel()[is_positive]].sum())
    return twice_rank_sum - positives * (positives + 1)


# --------------------------------------------------------------------------- offline


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of records whose prediction equals the truth.

        accuracy = #(y_pred = y_true) / n

    >>> accuracy(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0]))  # 2 of 4
    0.5
    """
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return float("nan")
    return int(np.count_nonzero(t == p)) / t.size


def precision(y_true: Any, y_pred: Any, positive: object = 1, average: Average = "binary") -> float:
    """Precision, ``tp / (tp + fp)``; 0.0 when nothing is predicted positive.

    ``average="binary"`` scores ``positive`` against all other labels; ``"macro"`` is the
    unweighted mean of the per-label precisions over the labels seen in either array.

    >>> precision(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0]))  # tp 2, fp 1
    0.6666666666666666
    """
    scores = _classification_scores(y_true, y_pred, positive, average)
    return float("nan") if scores is None else scores["precision"]


def recall(y_true: Any, y_pred: Any, positive: object = 1, average: Average = "binary") -> float:
    """Recall, ``tp / (tp + fn)``; 0.0 when no record is truly positive.

    ``average`` as in :func:`precision`.

    >>> recall(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 0]))  # tp 1, fn 2
    0.3333333333333333
    """
    scores = _classification_scores(y_true, y_pred, positive, average)
    return float("nan") if scores is None else scores["recall"]


def f1(y_true: Any, y_pred: Any, positive: object = 1, average: Average = "binary") -> float:
    """F1, the harmonic mean of precision and recall, ``2·tp / (2·tp + fp + fn)``.

    0.0 when ``tp + fp + fn = 0``. The macro F1 is the mean of per-label F1 scores (not
    the F1 of the macro precision and recall), as in sklearn.

    >>> f1(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0]))  # 2·2 / (4 + 1 + 1)
    0.6666666666666666
    >>> f1(np.array(["a", "b", "c"]), np.array(["a", "a", "c"]), average="macro")  # (2/3 + 0 + 1) / 3
    0.5555555555555555
    """
    scores = _classification_scores(y_true, y_pred, positive, average)
    return float("nan") if scores is None else scores["f1"]


def roc_auc(y_true_binary: Any, scores: Any, positive: object = 1) -> float:
    """Exact ROC AUC by the Mann–Whitney statistic, ties counted one half.

        AUC = ( #(s_pos > s_neg) + ½·#(s_pos = s_neg) ) / (P · N)

    over all (positive, negative) pairs; a record is positive when its label equals
    ``positive`` (``True`` equals 1). ``nan`` without both classes. NaN scores raise.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))  # (1 + 0 + 2) / 4
    0.75
    >>> roc_auc(np.array([0, 1]), np.array([0.5, 0.5]))  # one tied pair
    0.5
    """
    t = np.asarray(y_true_binary).ravel()
    s = _finite_scores(scores, t.size)
    is_positive = t == positive
    pos = int(np.count_nonzero(is_positive))
    neg = t.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return _mann_whitney_twice(is_positive, s) / (2 * pos * neg)


def log_loss(y_true_binary: Any, prob: Any, eps: float = LOG_LOSS_EPS, positive: object = 1) -> float:
    """Mean binary cross-entropy of the positive-class probability ``prob``.

        log_loss = −(1/n) Σ [ y·ln p + (1 − y)·ln(1 − p) ],  p = clip(prob, eps, 1 − eps)

    >>> round(log_loss(np.array([1, 0]), np.array([0.8, 0.4])), 12)  # −(ln 0.8 + ln 0.6)/2
    0.36698458754
    """
    t = np.asarray(y_true_binary).ravel()
    p = _finite_scores(prob, t.size)
    if t.size == 0:
        return float("nan")
    return ExactSum.of(_log_losses(t == positive, p, eps)).divided_by(t.size)


def _errors(y_true: Any, y_pred: Any) -> tuple[np.ndarray, int]:
    """Errors ``y_pred − y_true`` of the pairs where both are finite, and the dropped count."""
    t, p = _pair(y_true, y_pred)
    t = t.astype(np.float64, copy=False)
    p = p.astype(np.float64, copy=False)
    finite = np.isfinite(t) & np.isfinite(p)
    with np.errstate(over="ignore"):  # a difference beyond 1.8e308 is kept as ±inf
        error = p[finite] - t[finite]
    return error, int(t.size - error.size)


def _squares(error: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # a square beyond 1.8e308 is kept as +inf
        return error * error


def _rmse(squared_total: ExactSum, count: int) -> float:
    return float(np.sqrt(squared_total.divided_by(count)))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error over the pairs where both values are finite.

        MAE = (1/n) Σ |y_pred − y_true|

    >>> mae(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0]))  # (1 + 0 + 2) / 3
    1.0
    """
    error, _ = _errors(y_true, y_pred)
    return ExactSum.of(np.abs(error)).divided_by(error.size)


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error over the pairs where both values are finite.

        RMSE = sqrt( (1/n) Σ (y_pred − y_true)² )

    >>> rmse(np.array([0.0, 0.0]), np.array([3.0, -4.0]))  # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    error, _ = _errors(y_true, y_pred)
    return _rmse(ExactSum.of(_squares(error)), error.size)


# --------------------------------------------------------------------------- summaries


def _as_labels(classes: Iterable[object]) -> tuple[str, ...]:
    labels = tuple(str(c) for c in classes)
    if not labels:
        raise ValueError("a classification summary needs at least one class")
    if len(set(labels)) != len(labels):
        raise ValueError(f"classes must be distinct as strings, got {labels}")
    if OTHER in labels:
        raise ValueError(f"{OTHER!r} is reserved for labels outside the class set")
    return labels


def _label_strings(values: np.ndarray) -> np.ndarray:
    """``str`` of every value; numpy dtypes go through ``unique`` to stringify each once."""
    if values.dtype.kind == "U":
        return values  # text already: ``str`` of each is itself
    if values.dtype.kind == "O":
        return np.array([str(v) for v in values], dtype=str)
    distinct, codes = np.unique(values, return_inverse=True)
    names = np.array([str(v) for v in distinct.tolist()], dtype=str)
    return names[codes.ravel()] if values.size else np.array([], dtype=str)


_COMPARED_CLASSES = 16  # up to this many classes, labels are coded by comparison, not by sorting


def _class_codes(classes: tuple[str, ...], names: np.ndarray) -> np.ndarray:
    """Index of each label name in ``classes``; ``len(classes)`` (``__other__``) otherwise."""
    if names.dtype.kind == "U" and len(classes) <= _COMPARED_CLASSES:
        # A few classes: one vectorised comparison each, where ``unique`` would sort the text.
        codes = np.full(names.size, len(classes), dtype=np.int64)
        for i, name in enumerate(classes):
            codes[names == name] = i
        return codes
    lookup = {name: i for i, name in enumerate(classes)}
    distinct, codes = np.unique(names, return_inverse=True)
    index = np.fromiter((lookup.get(str(d), len(classes)) for d in distinct), dtype=np.int64, count=distinct.size)
    return index[codes.ravel()]


def _score_bins_of(scores: np.ndarray, bins: int) -> np.ndarray:
    clipped = np.clip(scores, 0.0, 1.0)
    return np.minimum(np.floor(clipped * bins), bins - 1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ClassificationSummary:
    """Confusion matrix over a frozen class set, and score histograms for binary tasks.

    ``confusion[i, j]`` counts records of true class ``i`` predicted as ``j``; the last
    row and column are ``__other__``, for labels outside ``classes``. ``other_correct``
    counts records whose true and predicted labels are both outside ``classes`` and
    equal, so accuracy stays exact when an unseen label is predicted correctly.

    Binary tasks (exactly two classes; ``positive`` is ``classes[1]`` unless given) keep
    ``positive_scores`` and ``negative_scores``: counts of the positive-class score
    over ``score_bins`` uniform bins on [0, 1], bin ``min(floor(s·B), B − 1)`` after
    clipping ``s`` into [0, 1]. A record is positive when its true label is
    ``positive``; records with a NaN score are not scored. From the histograms

        AUC_hist = Σ_b neg_b · (Σ_{b' > b} pos_b' + pos_b / 2) / (P · N)

    Pairs in different bins keep their order (the bin is monotone in the score); only a
    pair within one bin loses it and is counted ½ instead of 0, ½ or 1, so

        |AUC_hist − AUC_exact| ≤ Σ_b pos_b · neg_b / (2 · P · N)

    (:meth:`roc_auc_error_bound`), which is 0 when no bin holds both a positive and a
    negative. ``log_loss_total`` is the exact sum over scored records of
    −ln(clip(p, 1e-15, 1 − 1e-15)), ``p`` the probability given to the true outcome.
    Multiclass summaries have ``positive=None``, ``score_bins=0`` and empty histograms.

    >>> s = ClassificationSummary.fold(
    ...     ["0", "1"], np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]),
    ...     scores=np.array([0.1, 0.4, 0.35, 0.8]), score_bins=10,
    ... )
    >>> s.confusion.tolist()
    [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    >>> m = s.metrics()
    >>> m["accuracy"], m["precision"], m["recall"], m["roc_auc"]
    (0.75, 0.6666666666666666, 1.0, 0.75)
    """

    classes: tuple[str, ...]
    confusion: np.ndarray  # int64, (K + 1) × (K + 1): rows true, columns predicted
    positive: str | None = None
    score_bins: int = 0
    positive_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    negative_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    log_loss_total: ExactSum = field(default_factory=ExactSum)
    scored: int = 0
    other_correct: int = 0

    def __post_init__(self) -> None:
        k = len(self.classes) + 1
        if self.confusion.shape != (k, k):
            raise ValueError(f"confusion must be {k}×{k} for {len(self.classes)} classes")
        binary = len(self.classes) == 2
        if binary != (self.positive is not None) or (binary and self.positive not in self.classes):
            raise ValueError("positive must be one of the two classes of a binary task, else None")
        bins = self.score_bins
        if (binary and bins < 1) or (not binary and bins != 0):
            raise ValueError("score_bins must be positive for a binary task and 0 otherwise")
        if self.positive_scores.shape != (bins,) or self.negative_scores.shape != (bins,):
            raise ValueError(f"score histograms must have {bins} bins")

    @staticmethod
    def _layout(
        classes: Iterable[object], positive: object, score_bins: int
    ) -> tuple[tuple[str, ...], str | None, int]:
        labels = _as_labels(classes)
        if len(labels) != 2:
            if positive is not None:
                raise ValueError("positive applies only to a binary task (exactly two classes)")
            return labels, None, 0
        pos = labels[1] if positive is None else str(positive)
        if pos not in labels:
            raise ValueError(f"positive {pos!r} is not one of the classes {labels}")
        if score_bins < 1:
            raise ValueError(f"score_bins must be positive, got {score_bins}")
        return labels, pos, int(score_bins)

    @classmethod
    def empty(
        cls, classes: Iterable[object], positive: object = None, score_bins: int = DEFAULT_SCORE_BINS
    ) -> ClassificationSummary:
        labels, pos, bins = cls._layout(classes, positive, score_bins)
        k = len(labels) + 1
        return cls(
            labels,
            np.zeros((k, k), dtype=np.int64),
            pos,
            bins,
            np.zeros(bins, dtype=np.int64),
            np.zeros(bins, dtype=np.int64),
        )

    @classmethod
    def fold(
        cls,
        classes: Iterable[object],
        y_true: Any,
        y_pred: Any,
        scores: Any = None,
        positive: object = None,
        score_bins: int = DEFAULT_SCORE_BINS,
    ) -> ClassificationSummary:
        """Summarise one batch; ``scores`` (binary tasks only) is P(positive) per record."""
        labels, pos, bins = cls._layout(classes, positive, score_bins)
        t, p = _pair(y_true, y_pred)
        true_names, pred_names = _label_strings(t), _label_strings(p)
        tc, pc = _class_codes(labels, true_names), _class_codes(labels, pred_names)
        k = len(labels) + 1
        confusion = np.bincount(tc * k + pc, minlength=k * k).astype(np.int64).reshape(k, k)
        unseen = (tc == k - 1) & (pc == k - 1)
        other_correct = int(np.count_nonzero(true_names[unseen] == pred_names[unseen]))
        pos_hist = np.zeros(bins, dtype=np.int64)
        neg_hist = np.zeros(bins, dtype=np.int64)
        loss_total, scored = ExactSum(), 0
        if scores is not None:
            if pos is None:
                raise ValueError("scores apply only to a binary task (exactly two classes)")
            s = np.asarray(scores, dtype=np.float64).ravel()
            if s.size != t.size:
                raise ValueError(f"y_true has {t.size} records but the scores have {s.size}")
            present = ~np.isnan(s)
            s = s[present]
            is_positive = true_names[present] == pos
            b = _score_bins_of(s, bins)
            pos_hist = np.bincount(b[is_positive], minlength=bins).astype(np.int64)
            neg_hist = np.bincount(b[~is_positive], minlength=bins).astype(np.int64)
            loss_total = ExactSum.of(_log_losses(is_positive, s, LOG_LOSS_EPS))
            scored = int(s.size)
        return cls(labels, confusion, pos, bins, pos_hist, neg_hist, loss_total, scored, other_correct)

    @property
    def count(self) -> int:
        """Number of records folded in."""
        return int(self.confusion.sum())

    def _auc_parts(self) -> tuple[int, int, int, int] | None:
        """(2·P·N, twice the histogram U, Σ pos_b·neg_b, P·N), or None if AUC is undefined."""
        if self.positive is None:
            return None
        pos = [int(v) for v in self.positive_scores]
        neg = [int(v) for v in self.negative_scores]
        p_total, n_total = sum(pos), sum(neg)
        if p_total == 0 or n_total == 0:
            return None
        # Python integers: Σ neg_b · above_b can pass 2**63 for large windows.
        twice_u, same_bin, above = 0, 0, 0
        for pb, nb in zip(reversed(pos), reversed(neg)):
            twice_u += nb * (2 * above + pb)
            same_bin += pb * nb
            above += pb
        return 2 * p_total * n_total, twice_u, same_bin, p_total * n_total

    def roc_auc(self) -> float:
        """Histogram ROC AUC (ties within a bin count ½); ``nan`` when undefined."""
        parts = self._auc_parts()
        return float("nan") if parts is None else parts[1] / parts[0]

    def roc_auc_error_bound(self) -> float:
        """Σ_b pos_b·neg_b / (2·P·N), the most the histogram AUC can differ from the exact one.

        >>> y, scores = [0, 1, 1], [0.6, 0.7, 0.3]  # exact AUC ½: 0.7 > 0.6 > 0.3
        >>> s = ClassificationSummary.fold(["0", "1"], y, y, scores=scores, score_bins=2)
        >>> s.roc_auc(), s.roc_auc_error_bound()  # the pair (0.7, 0.6) shares bin 1: ½ not 1
        (0.25, 0.25)
        """
        parts = self._auc_parts()
        return float("nan") if parts is None else parts[2] / parts[0]

    def metrics(self) -> dict[str, float]:
        """accuracy, precision, recall, f1, roc_auc and log_loss (nan where undefined).

        Precision, recall and F1 are binary (``positive`` against the rest) for two
        classes, else macro averages over the classes seen as truth or prediction.
        ``__other__`` never enters a macro average, but its records count as false
        positives and negatives of the known classes.
        """
        n = self.count
        nan = float("nan")
        if n == 0:
            return dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"), nan)
        known = len(self.classes)
        diagonal = np.diagonal(self.confusion)
        tp, predicted, actual = diagonal, self.confusion.sum(axis=0), self.confusion.sum(axis=1)
        correct = int(diagonal[:known].sum()) + self.other_correct
        if self.positive is not None:
            i = self.classes.index(self.positive)
            t = int(tp[i])
            scores = _binary_scores(t, int(predicted[i]) - t, int(actual[i]) - t)
        else:
            seen = (predicted[:known] + actual[:known]) > 0
            scores = _macro_scores(tp[:known][seen], predicted[:known][seen], actual[:known][seen])
        return {
            "accuracy": correct / n,
            **scores,
            "roc_auc": self.roc_auc(),
            "log_loss": self.log_loss_total.divided_by(self.scored),
        }

    def __add__(self, other: ClassificationSummary) -> ClassificationSummary:
        if (self.classes, self.positive, self.score_bins) != (other.classes, other.positive, other.score_bins):
            raise ValueError("cannot merge classification summaries over different classes or score bins")
        return ClassificationSummary(
            self.classes,
            self.confusion + other.confusion,
            self.positive,
            self.score_bins,
            self.positive_scores + other.positive_scores,
            self.negative_scores + other.negative_scores,
            self.log_loss_total + other.log_loss_total,
            self.scored + other.scored,
            self.other_correct + other.other_correct,
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ClassificationSummary)
            and self.classes == other.classes
            and self.positive == other.positive
            and self.score_bins == other.score_bins
            and np.array_equal(self.confusion, other.confusion)
            and np.array_equal(self.positive_scores, other.positive_scores)
            and np.array_equal(self.negative_scores, other.negative_scores)
            and self.log_loss_total == other.log_loss_total
            and self.scored == other.scored
            and self.other_correct == other.other_correct
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` restores an equal summary."""
        return {
            "type": "classification",
            "classes": list(self.classes),
            "positive": self.positive,
            "score_bins": self.score_bins,
            # int64 arrays: tolist() gives Python ints, in C (a slot's summary has ~2,000 counts)
            "confusion": self.confusion.astype(np.int64, copy=False).tolist(),
            "positive_scores": self.positive_scores.astype(np.int64, copy=False).tolist(),
            "negative_scores": self.negative_scores.astype(np.int64, copy=False).tolist(),
            "log_loss_total": self.log_loss_total.to_text(),
            "scored": self.scored,
            "other_correct": self.other_correct,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassificationSummary:
        if d.get("type") != "classification":
            raise ValueError(f"not a classification summary: type {d.get('type')!r}")
        k = len(d["classes"]) + 1
        return cls(
            tuple(str(c) for c in d["classes"]),
            np.asarray(d["confusion"], dtype=np.int64).reshape(k, k),
            None if d["positive"] is None else str(d["positive"]),
            int(d["score_bins"]),
            np.asarray(d["positive_scores"], dtype=np.int64).reshape(-1),
            np.asarray(d["negative_scores"], dtype=np.int64).reshape(-1),
            ExactSum.from_text(d["log_loss_total"]),
            int(d["scored"]),
            int(d["other_correct"]),
        )


@dataclass(frozen=True, eq=False)
class RegressionSummary:
    """Exact sums of absolute and squared errors over the pairs where both are finite.

    A pair with a NaN or ±inf on either side counts in ``missing`` and nowhere else.

        MAE = abs_error_total / count,  RMSE = sqrt(squared_error_total / count)

    >>> s = RegressionSummary.fold(np.array([1.0, 2.0, np.nan]), np.array([2.0, 4.0, 0.0]))
    >>> s.count, s.missing, s.metrics()
    (2, 1, {'mae': 1.5, 'rmse': 1.5811388300841898})
    """

    count: int = 0
    missing: int = 0
    abs_error_total: ExactSum = field(default_factory=ExactSum)
    squared_error_total: ExactSum = field(default_factory=ExactSum)

    @classmethod
    def empty(cls) -> RegressionSummary:
        return cls()

    @classmethod
    def fold(cls, y_true: Any, y_pred: Any) -> RegressionSummary:
        error, missing = _errors(y_true, y_pred)
        return cls(int(error.size), missing, ExactSum.of(np.abs(error)), ExactSum.of(_squares(error)))

    def metrics(self) -> dict[str, float]:
        """mae and rmse (nan when no pair was complete)."""
        return {
            "mae": self.abs_error_total.divided_by(self.count),
            "rmse": _rmse(self.squared_error_total, self.count),
        }

    def __add__(self, other: RegressionSummary) -> RegressionSummary:
        if not isinstance(other, RegressionSummary):
            raise ValueError(f"cannot merge a regression summary with {type(other).__name__}")
        return RegressionSummary(
            self.count + other.count,
            self.missing + other.missing,
            self.abs_error_total + other.abs_error_total,
            self.squared_error_total + other.squared_error_total,
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RegressionSummary)
            and self.count == other.count
            and self.missing == other.missing
            and self.abs_error_total == other.abs_error_total
            and self.squared_error_total == other.squared_error_total
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` restores an equal summary."""
        return {
            "type": "regression",
            "count": self.count,
            "missing": self.missing,
            "abs_error_total": self.abs_error_total.to_text(),
            "squared_error_total": self.squared_error_total.to_text(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegressionSummary:
        if d.get("type") != "regression":
            raise ValueError(f"not a regression summary: type {d.get('type')!r}")
        return cls(
            int(d["count"]),
            int(d["missing"]),
            ExactSum.from_text(d["abs_error_total"]),
            ExactSum.from_text(d["squared_error_total"]),
        )


# --------------------------------------------------------------------------- losses


def per_record_loss(task: Task, y_true: Any, y_pred_or_score: Any, positive: object = None) -> np.ndarray:
    """Loss of each record, for the reference profile's "loss" distribution.

    * ``"regression"``: ``|y_pred − y_true|``; NaN where either value is not finite.
    * ``"classification"`` with ``positive``: the second array holds P(positive) and the
      loss is the record's log loss, −ln of the clipped probability of the true outcome
      (labels compared as strings, as in :class:`ClassificationSummary`); NaN where the
      score is NaN.
    * ``"classification"`` without ``positive``: the second array holds predicted labels
      and the loss is 0/1 misclassification (labels compared as strings).

    >>> per_record_loss("regression", np.array([1.0, 2.0]), np.array([1.5, 0.0])).tolist()
    [0.5, 2.0]
    >>> per_record_loss("classification", np.array(["a", "b"]), np.array(["a", "a"])).tolist()
    [0.0, 1.0]
    >>> per_record_loss("classification", np.array([1, 0]), np.array([0.5, 0.5]), positive=1).round(6).tolist()
    [0.693147, 0.693147]
    """
    t, p = _pair(y_true, y_pred_or_score)
    if task == "regression":
        t = t.astype(np.float64, copy=False)
        p = p.astype(np.float64, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = np.abs(p - t)
        loss[~(np.isfinite(t) & np.isfinite(p))] = np.nan
        return loss
    if task == "classification":
        true_names = _label_strings(t)
        if positive is None:
            return (true_names != _label_strings(p)).astype(np.float64)
        s = p.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):  # NaN scores give NaN losses
            return _log_losses(true_names == str(positive), s, LOG_LOSS_EPS)
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
