"""Request keys: a model's request ids as 64-bit integers, hashed a whole column at a time.

The label join finds a prediction's label by ``(model, request_id)``. Holding the ids as
Python strings costs a string object, a dict entry and a hash per record wherever the join
runs; a 64-bit key per record lets it run on numpy arrays
(:mod:`~exporter.pipeline.key_index`). Scale-out's stage 1 computes the keys where it folds,
so the model's owner in stage 2 never builds a string (wire format 3,
:mod:`exporter.aggregator.scaleout.wire`): the function is part of the wire format and must
never change.

The key of ``request_id`` under ``model``, over the id's UTF-8 bytes ``b``:

1. ``b`` is cut into 8-byte words, the last zero-padded, each read little-endian: ``w₀ … wₙ₋₁``;
2. ``s = Σₖ mix(wₖ ⊕ (k·C₁ + C₂))`` modulo 2⁶⁴ (each word mixed with its place, so equal
   words in other places differ);
3. ``key = mix(s ⊕ mix(len(b) ⊕ m))`` where ``m`` is the same sum over the model name's
   bytes with its own length folded in: ``m = mix(s_model ⊕ len(model))``;
4. keys 0 and 1 (the index's marks for *empty* and *gone*) become 2 and 3.

``mix`` is SplitMix64's finaliser (Steele, Lea and Flood, 2014), a bijection of 64-bit
integers; ``C₁`` and ``C₂`` are its increment and its first multiplier. A sum of mixed words
is computed for a whole column with a cumulative sum, without a loop per record.

Two different ids of one model share a key with probability about 2⁻⁶⁴: with a million
predictions waiting, a label finds a wrong prediction about once in 10¹³ labels. The keys
are not a defence against someone choosing ids to collide on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_WORD = np.dtype("<u8")
EMPTY_KEY, GONE_KEY = 0, 1  # never a key: the index's marks


def mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> _S30
    z *= _C2
    z ^= z >> _S27
    z *= _C3
    z ^= z >> _S31
    return z


def _places(places: np.ndarray) -> np.ndarray:
    """What word ``k`` of a string is mixed with: ``k·C₁ + C₂``, for each place ``k``."""
    return places.astype(np.uint64) * _C1 + _C2


def _word_sums(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per string of ``array`` (no nulls): the sum of its mixed words, and its length in bytes."""
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    count = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)[array.offset : array.offset + count + 1]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    first, last = (int(offsets[0]), int(offsets[-1])) if count else (0, 0)
    data = np.frombuffer(buffers[2], dtype=np.uint8)[first:last] if last > first else np.zeros(0, np.uint8)
    if count and (lengths == lengths[0]).all():
        # Ids of one length (UUIDs, fixed-width counters): a matrix, one row per id.
        width = int(lengths[0])
        row_words = (width + 7) // 8
        matrix = np.zeros((count, row_words * 8), dtype=np.uint8)
        matrix[:, :width] = data.reshape(count, width)
        sums = mix(matrix.view(_WORD) ^ _places(np.arange(row_words))).sum(axis=1, dtype=np.uint64)
        return sums, lengths.astype(np.uint64)
    words = (lengths + 7) // 8
    word_ends = np.cumsum(words)
    word_starts = word_ends - words
    total = int(word_ends[-1]) if count else 0
    padded = np.zeros(total * 8, dtype=np.uint8)
    if data.size:
        # Each string's bytes move to the start of its own run of words.
        shift = np.repeat(word_starts * 8 - (offsets[:-1] - first), lengths)
        padded[np.arange(data.size, dtype=np.int64) + shift] = data
    places = np.arange(total, dtype=np.int64) - np.repeat(word_starts, words)
    mixed = mix(padded.view(_WORD) ^ _places(places))
    running = np.concatenate(([np.uint64(0)], np.cumsum(mixed, dtype=np.uint64)))
    return running[word_ends] - running[word_starts], lengths.astype(np.uint64)


def _strings(values: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string())
    if values.null_count:
        raise ValueError("request ids to key must not be null")
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"request ids must be strings, not {values.type}")
    return values


def model_seed(model: str) -> np.uint64:
    """``m`` of the module docstring: the model's share of each of its keys."""
    sums, lengths = _word_sums(pa.array([model], pa.string()))
    return np.uint64(mix(sums ^ lengths)[0])


def request_keys(
    model: str | np.ndarray, request_ids: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray
) -> np.ndarray:
    """The uint64 keys of ``request_ids`` (no nulls) under ``model`` — one name, or one seed
    per id (:func:`model_seed`, for a column of several models).

    >>> a = request_keys("fraud", ["r-1", "r-2"])
    >>> a.dtype, bool(a[0] != a[1]), bool(request_keys("churn", ["r-1"])[0] != a[0])
    (dtype('uint64'), True, True)
    """
    sums, lengths = _word_sums(_strings(request_ids))
    seeds = model_seed(model) if isinstance(model, str) else np.asarray(model, dtype=np.uint64)
    keys = mix(sums ^ mix(lengths ^ seeds))
    keys[keys <= GONE_KEY] += np.uint64(2)
    return keys


def keys_of_models(models: pa.Array | pa.ChunkedArray, request_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Keys of a column of request ids whose models may differ row by row (no nulls in either)."""
    encoded = models.dictionary_encode()
    if isinstance(encoded, pa.ChunkedArray):
        encoded = (
            encoded.unify_dictionaries().combine_chunks()
            if encoded.num_chunks
            else pa.array([], models.type).dictionary_encode()
        )
    names = encoded.dictionary.to_pylist()
    if len(names) == 1:
        return request_keys(names[0], request_ids)
    seeds = np.array([model_seed(name) for name in names], dtype=np.uint64)
    return request_keys(seeds[encoded.indices.to_numpy(zero_copy_only=False)], request_ids)
