"""Scalar fields of a record read into the contract's types, with one rule per field kind.

Predictions: a number is a score, text is a class, ``{"score", "class"}`` gives both.
Integers (and booleans) are class labels as well as numbers, so they fill both columns —
``1`` becomes score 1.0 and class ``"1"``, which is how a label ``1`` is written too, so
predicted and true classes compare as text. A list of numbers is a probability vector:
the class is the index of the largest, and the score is the positive-class probability
for two classes, else the winning probability.

Labels: numbers and booleans give ``label_value``; every label also has its text form in
``label_class`` (``1`` and ``1.0`` are both ``"1"``, booleans ``"true"``/``"false"``).
"""

from __future__ import annotations

import math

from exporter.decoders.record_error import RecordError
from exporter.records import Reason

Prediction = tuple[float | None, str | None]
Label = tuple[float | None, str]


def text_field(value: object, name: str) -> str | None:
    """An identity-like field as text: strings as given, numbers written out.

    >>> text_field(7, "model_version")
    '7'
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RecordError(Reason.MISSING_FIELD, f"{name}: expected text, got {type(value).__name__}")


def number_field(value: object, name: str) -> float | None:
    """An optional measurement (latency): a number, or None; NaN counts as absent."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise RecordError(Reason.MISSING_FIELD, f"{name}: number out of range") from None
    raise RecordError(Reason.MISSING_FIELD, f"{name}: expected a number, got {type(value).__name__}")


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def prediction_parts(value: object) -> Prediction:
    """``(score, class)`` of one prediction.

    >>> prediction_parts(0.93), prediction_parts("fraud"), prediction_parts(1)
    ((0.93, None), (None, 'fraud'), (1.0, '1'))
    >>> prediction_parts({"score": 0.93, "class": "fraud"})
    (0.93, 'fraud')
    >>> prediction_parts([0.2, 0.8]), prediction_parts([0.1, 0.7, 0.2])
    ((0.8, '1'), (0.7, '1'))
    """
    if value is None:
        return None, None
    if isinstance(value, bool):
        return float(value), bool_text(value)
    if isinstance(value, float):
        return (None if math.isnan(value) else value), None
    if isinstance(value, int):
        return _integer_prediction(value)
    if isinstance(value, str):
        return None, value
    if isinstance(value, dict):
        return _object_prediction(value)
    if isinstance(value, list):
        return _vector_prediction(value)
    raise RecordError(Reason.BAD_PREDICTION, f"prediction: unexpected {type(value).__name__}")


def class_probabilities(value: object) -> tuple[float, ...] | None:
    """The probability vector of a multiclass prediction (three or more numbers), else None.

    Position ``k`` is class ``k``'s probability, as :func:`prediction_parts` names the
    predicted class by its position. Call it on a value :func:`prediction_parts` accepted.

    >>> class_probabilities([0.1, 0.7, 0.2]), class_probabilities([0.2, 0.8]), class_probabilities(0.9)
    ((0.1, 0.7, 0.2), None, None)
    """
    if not isinstance(value, list) or len(value) < 3:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return tuple(float(v) for v in value)


def _integer_prediction(value: int) -> Prediction:
    try:
        return float(value), str(value)
    except OverflowError:
        raise RecordError(Reason.BAD_PREDICTION, "prediction: number out of range") from None


def _object_prediction(value: dict[str, object]) -> Prediction:
    score, klass = value.get("score"), value.get("class")
    if score is not None and not isinstance(score, (int, float)):
        raise RecordError(Reason.BAD_PREDICTION, "prediction.score: expected a number")
    if klass is not None and not isinstance(klass, (str, int)):
        raise RecordError(Reason.BAD_PREDICTION, "prediction.class: expected text")
    score_value = prediction_parts(score)[0]
    class_text = prediction_parts(klass)[1] if isinstance(klass, (bool, int)) else klass
    return score_value, class_text


def _vector_prediction(values: list[object]) -> Prediction:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values or len(numbers) != len(values):
        raise RecordError(Reason.BAD_PREDICTION, "prediction: a list must hold numbers (class probabilities)")
    if len(numbers) == 1:
        return prediction_parts(numbers[0])
    try:
        probabilities = [float(v) for v in numbers]
    except OverflowError:
        raise RecordError(Reason.BAD_PREDICTION, "prediction: number out of range") from None
    if any(math.isnan(p) for p in probabilities):
        raise RecordError(Reason.BAD_PREDICTION, "prediction: NaN in class probabilities")
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    score = probabilities[1] if len(probabilities) == 2 else probabilities[best]
    return score, str(best)


def label_parts(value: object) -> Label:
    """``(label_value, label_class)`` of one ground-truth label.

    >>> label_parts(1), label_parts(1.0), label_parts(2.5), label_parts(True), label_parts("fraud")
    ((1.0, '1'), (1.0, '1'), (2.5, '2.5'), (1.0, 'true'), (None, 'fraud'))
    """
    if isinstance(value, str):
        return None, value
    if isinstance(value, bool):
        return float(value), bool_text(value)
    if isinstance(value, int):
        try:
            return float(value), str(value)
        except OverflowError:
            raise RecordError(Reason.BAD_LABEL, "label: number out of range") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(Reason.BAD_LABEL, f"label: {value} is not a label")
        return value, (str(int(value)) if value.is_integer() else repr(value))
    if value is None:
        raise RecordError(Reason.BAD_LABEL, "label: required")
    raise RecordError(Reason.BAD_LABEL, f"label: expected a number, boolean or text, got {type(value).__name__}")
