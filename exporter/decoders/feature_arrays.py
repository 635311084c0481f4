"""One feature's values from a batch, as the Arrow column the contract asks for.

A feature is float64 when the batch held only numbers and nulls for it, else text;
booleans are text (``"true"``/``"false"``), so a flag column is categorical. NaN is a
missing value (producers write NaN where pandas had a gap), infinities stay numbers.
Values that are not scalars (objects, lists) are reported per row so that only those
rows are refused.
"""

from __future__ import annotations

import pyarrow as pa

from exporter.decoders.arrow_text import text_array
from exporter.decoders.field_values import bool_text

RowProblems = dict[int, str]

_NUMERIC_TYPES = frozenset({int, float})
_SCALAR_TYPES = frozenset({int, float, str, bool, type(None)})


def feature_array(name: str, values: list[object]) -> tuple[pa.Array, RowProblems]:
    """The column for feature ``name`` and the rows whose value cannot be a feature.

    >>> feature_array("x", [1, 2.5, None, float("nan")])[0].to_pylist()
    [1.0, 2.5, None, None]
    >>> feature_array("x", [True, None, "DE"])[0].to_pylist()
    ['true', None, 'DE']
    """
    # pyarrow's converter does the common cases in C; it only needs a second look
    # when it settled on double, because it also turns booleans into 1.0 there.
    try:
        inferred = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return _mixed_array(name, values)
    kind = inferred.type
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return inferred.cast(pa.float64(), safe=False), {}
    if pa.types.is_floating(kind):
        if bool in set(map(type, values)):
            return _mixed_array(name, values)
        return inferred.cast(pa.float64(), safe=False), {}
    if pa.types.is_string(kind):
        return inferred, {}
    if pa.types.is_boolean(kind):
        return inferred.cast(pa.string()), {}
    return _mixed_array(name, values)


def _mixed_array(name: str, values: list[object]) -> tuple[pa.Array, RowProblems]:
    problems: RowProblems = {}
    kinds = set(map(type, values))
    if not kinds <= _SCALAR_TYPES:
        for row, value in enumerate(values):
            if type(value) not in _SCALAR_TYPES:
                problems[row] = f"features.{name}: expected a number, text, boolean or null, got {type(value).__name__}"
        values = [None if row in problems else v for row, v in enumerate(values)]
        kinds = set(map(type, values))
    if kinds <= _NUMERIC_TYPES | {type(None)}:
        return pa.array([_as_float(v) for v in values], type=pa.float64(), from_pandas=True), problems
    return text_array([_as_text(v) for v in values]), problems


def _as_float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")  # type: ignore[operator]


def _as_text(value: object) -> str | None:
    kind = type(value)
    if value is None or kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return bool_text(value)  # type: ignore[arg-type]
    if kind is float and value != value:
        return None
    return str(value)
