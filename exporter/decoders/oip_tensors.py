"""Open Inference Protocol tensors turned into per-row features and predictions.

Shared by the KServe v2 JSON bodies and Seldon's protobuf messages. The first dimension
of every tensor is the batch. A tensor of shape ``[batch]`` or ``[batch, 1]`` is one
feature named after the tensor (the one-tensor-per-column layout of the pandas codecs);
wider tensors are flattened row-major into features ``<name>_<j>`` (``input-0_0``,
``input-0_1``, ...). An output of one value per row is read like a native
``prediction``; several values per row are class probabilities (see
:mod:`exporter.decoders.field_values`). With several outputs the first floating-point
one gives the score and the first other one (text, integer or boolean) the class.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from exporter.decoders.field_values import Prediction, class_probabilities, prediction_parts
from exporter.decoders.record_error import RecordError
from exporter.records import Reason

DEFAULT_MAX_FEATURES = 4096

FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
INTEGER_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
DATATYPES = FLOAT_TYPES | INTEGER_TYPES | {"BOOL", "BYTES"}

# Little-endian element layout of raw (binary) tensor contents.
RAW_LAYOUT = MappingProxyType(
    {
        "BOOL": "?",
        "UINT8": "<u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "<i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }
)


@dataclass(frozen=True)
class Tensor:
    """One named tensor with its values flattened row-major into Python scalars."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Sequence[object]

    @property
    def batch(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def width(self) -> int:
        return math.prod(self.shape[1:])


def element_count(shape: Sequence[int], where: str) -> int:
    if any(type(d) is not int or d < 0 for d in shape):
        raise RecordError(Reason.SHAPE_MISMATCH, f"{where}: shape {list(shape)[:8]} is not a list of sizes")
    return math.prod(shape)


def tensor_from_json(document: object, where: str, reason: Reason) -> Tensor:
    """A tensor from its v2 JSON form ``{"name", "shape", "datatype", "data"}``.

    >>> document = {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}
    >>> tensor_from_json(document, "inputs[0]", Reason.BAD_FEATURES)
    Tensor(name='x', datatype='FP32', shape=(2, 2), values=[1, 2, 3, 4])
    """
    if type(document) is not dict:
        raise RecordError(reason, f"{where}: expected a tensor object")
    name, datatype, shape = document.get("name"), document.get("datatype"), document.get("shape")
    if type(name) is not str or type(datatype) is not str or type(shape) is not list:
        raise RecordError(reason, f"{where}: a tensor needs text name and datatype and a list shape")
    datatype = datatype.upper()
    if datatype not in DATATYPES:
        raise RecordError(reason, f"{where}: unknown datatype {datatype[:32]!r}")
    count = element_count(shape, where)
    values = flattened(document.get("data"))
    if len(values) != count:
        raise RecordError(
            Reason.SHAPE_MISMATCH, f"{where}: shape {shape[:8]} needs {count} values, data has {len(values)}"
        )
    _check_element_types(values, datatype, where, reason)
    return Tensor(name, datatype, tuple(shape), values)


def flattened(data: object) -> list[object]:
    """Nested lists as one row-major list; a scalar as a list of one."""
    if type(data) is not list:
        return [data]
    if not any(type(v) is list for v in data):
        return data
    flat: list[object] = []
    stack: list[Iterable[object]] = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_element_types(values: Sequence[object], datatype: str, where: str, reason: Reason) -> None:
    kinds = set(map(type, values))
    if datatype == "BYTES":
        allowed: set[type] = {str, bytes}
    elif datatype == "BOOL":
        allowed = {bool}
    else:
        allowed = {int, float}
    if not kinds <= allowed:
        odd = next(k for k in kinds if k not in allowed)
        raise RecordError(reason, f"{where}: {datatype} data holds a {odd.__name__}")


def raw_values(datatype: str, raw: bytes, count: int, where: str, reason: Reason) -> list[object]:
    """Values of a raw (binary) tensor: little-endian elements, or length-prefixed BYTES.

    >>> raw_values("FP32", b"\\x00\\x00\\x80?\\x00\\x00\\x00@", 2, "x", Reason.BAD_FEATURES)
    [1.0, 2.0]
    >>> raw_values("BYTES", b"\\x02\\x00\\x00\\x00DE", 1, "x", Reason.BAD_FEATURES)
    ['DE']
    """
    if datatype == "BYTES":
        return _raw_bytes(raw, count, where)
    layout = RAW_LAYOUT.get(datatype)
    if layout is None:
        raise RecordError(reason, f"{where}: unknown datatype {datatype[:32]!r}")
    dtype = np.dtype(layout)
    if len(raw) != count * dtype.itemsize:
        raise RecordError(Reason.SHAPE_MISMATCH, f"{where}: {len(raw)} raw bytes do not hold {count} {datatype} values")
    return np.frombuffer(raw, dtype=dtype).tolist()


def _raw_bytes(raw: bytes, count: int, where: str) -> list[object]:
    values: list[object] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RecordError(Reason.SHAPE_MISMATCH, f"{where}: raw BYTES element length cut short")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise RecordError(Reason.SHAPE_MISMATCH, f"{where}: raw BYTES element runs past the end")
        values.append(raw[offset : offset + size].decode("utf-8", "replace"))
        offset += size
    if len(values) != count:
        raise RecordError(
            Reason.SHAPE_MISMATCH, f"{where}: raw BYTES holds {len(values)} elements, shape needs {count}"
        )
    return values


def _batch_of(tensors: Sequence[Tensor], reason: Reason, what: str) -> int:
    if not tensors:
        raise RecordError(reason, f"no {what} tensors")
    batches = {t.batch for t in tensors}
    if len(batches) != 1:
        raise RecordError(Reason.SHAPE_MISMATCH, f"{what} tensors disagree on the batch size: {sorted(batches)[:8]}")
    batch = batches.pop()
    if batch == 0:
        raise RecordError(reason, f"{what} tensors hold no rows")
    return batch


def feature_rows(inputs: Sequence[Tensor], max_features: int = DEFAULT_MAX_FEATURES) -> list[dict[str, object]]:
    """One feature mapping per batch row.

    >>> x = Tensor("input-0", "FP32", (2, 2), [1.0, 2.0, 3.0, 4.0])
    >>> feature_rows([x])
    [{'input-0_0': 1.0, 'input-0_1': 2.0}, {'input-0_0': 3.0, 'input-0_1': 4.0}]
    >>> feature_rows([Tensor("age", "INT64", (2,), [31, 47]), Tensor("country", "BYTES", (2, 1), ["DE", "FR"])])
    [{'age': 31, 'country': 'DE'}, {'age': 47, 'country': 'FR'}]
    """
    batch = _batch_of(inputs, Reason.BAD_FEATURES, "input")
    if sum(t.width for t in inputs) > max_features:
        raise RecordError(Reason.TOO_LARGE, f"more than {max_features} features per row")
    rows: list[dict[str, object]] = [{} for _ in range(batch)]
    for tensor in inputs:
        values = _texts(tensor.values) if tensor.datatype == "BYTES" else tensor.values
        width = tensor.width
        if width == 1:
            for row, value in zip(rows, values):
                row[tensor.name] = value
            continue
        names = [f"{tensor.name}_{j}" for j in range(width)]
        for index, row in enumerate(rows):
            row.update(zip(names, values[index * width : (index + 1) * width]))
    return rows


def _texts(values: Sequence[object]) -> Sequence[object]:
    if bytes not in set(map(type, values)):
        return values
    return [v.decode("utf-8", "replace") if type(v) is bytes else v for v in values]


def prediction_rows(outputs: Sequence[Tensor]) -> list[Prediction]:
    """``(score, class)`` per batch row.

    >>> prediction_rows([Tensor("predict", "FP64", (2,), [0.9, 0.2])])
    [(0.9, None), (0.2, None)]
    >>> prediction_rows([Tensor("label", "INT64", (1,), [1]), Tensor("proba", "FP32", (1, 2), [0.3, 0.7])])
    [(0.7, '1')]
    """
    _batch_of(outputs, Reason.BAD_PREDICTION, "output")
    scores = next((t for t in outputs if t.datatype in FLOAT_TYPES), None)
    classes = next((t for t in outputs if t.datatype not in FLOAT_TYPES), None)
    if scores is None or classes is None:
        return [prediction_parts(value) for value in _per_row(scores or classes)]  # type: ignore[arg-type]
    return [
        (prediction_parts(score)[0], prediction_parts(klass)[1])
        for score, klass in zip(_per_row(scores), _per_row(classes))
    ]


def tensor_probabilities(outputs: Sequence[Tensor]) -> list[tuple[float, ...] | None] | None:
    """Per batch row, the probability vector of a multiclass output (a float tensor of three
    or more values a row), else None; read from the tensor :func:`prediction_rows` scores by.

    >>> tensor_probabilities([Tensor("proba", "FP32", (2, 3), [0.1, 0.7, 0.2, 0.6, 0.3, 0.1])])
    [(0.1, 0.7, 0.2), (0.6, 0.3, 0.1)]
    >>> tensor_probabilities([Tensor("predict", "FP64", (2,), [0.9, 0.2])]) is None
    True
    """
    scores = next((t for t in outputs if t.datatype in FLOAT_TYPES), None)
    if scores is None or scores.width < 3:
        return None
    return [class_probabilities(row) for row in _per_row(scores)]


def _per_row(tensor: Tensor) -> list[object]:
    values = _texts(tensor.values) if tensor.datatype == "BYTES" else tensor.values
    width = tensor.width
    if width == 1:
        return list(values)
    return [list(values[i * width : (i + 1) * width]) for i in range(tensor.batch)]
