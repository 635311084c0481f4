"""Window buckets as they are kept: packed counts and exact sums, a few arrays per bucket.

A :class:`~exporter.pipeline.buckets.Bucket` holds, per feature, 1,002 fine-bin counts as
int64 and four exact sums as Python integers of ~1,100 bits: ~8.5 KB per numeric feature,
~52 MiB for a 100-feature model's 1-hour and 1-day windows. Nothing in a bucket needs that
width. A :class:`PackedBucket` keeps the same numbers, losslessly:

- **counts** of every summary in one vector (the :class:`BucketLayout`'s order), stored at
  the narrowest width that holds most of them (uint8, uint16 or uint32) — every count
  (*dense*), or only the nonzero ones placed by a bitmap (one bit per bin) or by their
  positions (at low traffic) — whichever is smallest; the few counts too large for that
  width (a tail bin, a count feature's common value) are kept apart as exceptions (index,
  int64 value), so one large bin does not widen a bucket;
- **exact sums** (:class:`~detectors.exact_sum.ExactSum`) as one byte string: each numerator
  with its trailing zero bits stripped (a sum of doubles is a multiple of its smallest
  ulp, so most of the 1,126 fractional bits are zeros), its shift and infinities in arrays;
- missing counts, minima and maxima as arrays; the performance summary as it is.

:func:`pack` and :func:`unpack` are exact inverses; :func:`sum_packed` adds packed buckets
into one :class:`~exporter.pipeline.buckets.Bucket` without unpacking each (a window read).
:class:`PackedRing` is the mapping of slot start → bucket a window keeps: it packs what is
stored and unpacks what is read, so the windows' users still see buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detectors.exact_sum import ExactSum
from detectors.profile import PerformanceSummary, ReferenceProfile
from detectors.summary import CategoricalSummary, ColumnSummary, NumericSummary
from exporter.pipeline.buckets import Bucket
from exporter.pipeline.class_scores import PREDICTED_KEY, SCORE_KEY, multiclass

PREDICTION, LABEL, LOSS = "\x00prediction", "\x00label", "\x00loss"  # the non-feature parts' keys
_PARTS = ((PREDICTION, "prediction"), (LABEL, "label"), (LOSS, "loss"))
_PART_KEYS = frozenset(key for key, _ in _PARTS)
SUMS_PER_NUMERIC = 4  # total, total of squares, lower tail, upper tail
_WIDTHS: tuple[np.dtype[np.unsignedinteger], ...] = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"))
_EXCEPTION_BYTES = 12  # a uint32 position and an int64 value


@dataclass(frozen=True, eq=False)
class BucketLayout:
    """Where each summary of a profile's buckets lives in a packed bucket."""

    keys: tuple[str, ...]  # features in the profile's order, then the parts the profile has
    references: tuple[ColumnSummary, ...]
    offsets: np.ndarray  # int64, start of each summary's counts; offsets[-1] is the total
    numeric: tuple[int, ...]  # for each key, its index among the numeric summaries, or −1

    @classmethod
    def of(cls, profile: ReferenceProfile) -> BucketLayout:
        keys: list[str] = list(profile.features)
        references: list[ColumnSummary] = [profile.features[k] for k in keys]
        calibration = multiclass(profile)
        for k in calibration.classes if calibration is not None else ():
            for prefix in (SCORE_KEY, PREDICTED_KEY):  # a multiclass model's class scores
                keys.append(prefix + k)
                references.append(profile.class_scores[k])
        for key, part in _PARTS:
            reference = getattr(profile, part)
            if reference is not None:
                keys.append(key)
                references.append(reference)
        widths = [r.counts.size for r in references]
        numeric, seen = [], 0
        for reference in references:
            numeric.append(seen if isinstance(reference, NumericSummary) else -1)
            seen += isinstance(reference, NumericSummary)
        return cls(
            tuple(keys), tuple(references), np.concatenate(([0], np.cumsum(widths))).astype(np.int64), tuple(numeric)
        )

    @property
    def total(self) -> int:
        return int(self.offsets[-1])

    @property
    def numerics(self) -> int:
        return sum(1 for i in self.numeric if i >= 0)

    def signature(self) -> list[list[object]]:
        """Keys and widths, to check that packed state was written for this layout."""
        return [[key, int(b - a)] for key, a, b in zip(self.keys, self.offsets[:-1], self.offsets[1:])]


DENSE, POSITIONS, BITMAP = "dense", "positions", "bitmap"  # how a PackedCounts says where its values go


@dataclass(frozen=True, eq=False)
class PackedCounts:
    """A vector of non-negative counts at a narrow width; see the module docstring.

    ``values`` holds every count (``dense``) or only the nonzero ones, placed by ``where``:
    their uint32 positions (``positions``, the fewest) or a bit per count, packed
    (``bitmap``, up to most of them nonzero).
    """

    size: int
    values: np.ndarray  # uint8/16/32
    form: str  # DENSE, POSITIONS or BITMAP
    where: np.ndarray | None  # uint32 positions or np.packbits of the nonzero mask; None when dense
    exception_at: np.ndarray  # uint32 indices into ``values`` whose count did not fit (stored there as 0)
    exception_values: np.ndarray  # int64, those counts

    @classmethod
    def of(cls, counts: np.ndarray) -> PackedCounts:
        """The smallest of the three forms at the best width."""
        size = counts.size
        nonzero = np.flatnonzero(counts)
        largest = int(counts.max(initial=0))
        best: tuple[int, int, str] | None = None
        for w, dtype in enumerate(_WIDTHS):
            limit = np.iinfo(dtype).max
            over = 0 if largest <= limit else int(np.count_nonzero(counts > limit))
            for form, placed in (
                (DENSE, size * dtype.itemsize),
                (POSITIONS, nonzero.size * (4 + dtype.itemsize)),
                (BITMAP, (size + 7) // 8 + nonzero.size * dtype.itemsize),
            ):
                cost = placed + over * _EXCEPTION_BYTES
                if best is None or cost < best[0]:
                    best = (cost, w, form)
        assert best is not None
        _, w, form = best
        dtype = _WIDTHS[w]
        limit = np.iinfo(dtype).max
        kept = counts if form == DENSE else counts[nonzero]
        over_at = np.flatnonzero(kept > limit).astype(np.uint32)
        values = (np.where(kept > limit, 0, kept) if over_at.size else kept).astype(dtype)
        where: np.ndarray | None = None
        if form == POSITIONS:
            where = nonzero.astype(np.uint32)
        elif form == BITMAP:
            where = np.packbits(counts != 0)
        return cls(size, values, form, where, over_at, kept[over_at].astype(np.int64))

    def positions(self) -> np.ndarray | None:
        """Where ``values`` go in the full vector (None: everywhere, in order)."""
        if self.form == POSITIONS:
            return self.where
        if self.form == BITMAP:
            return np.flatnonzero(np.unpackbits(self.where, count=self.size))  # type: ignore[arg-type]
        return None

    def add_to(self, total: np.ndarray) -> None:
        """Add these counts into an int64 vector of the full length."""
        at = self.positions()
        if at is None:
            np.add(total, self.values, out=total, casting="unsafe")
            if self.exception_at.size:
                total[self.exception_at] += self.exception_values
        else:
            total[at] += self.values
            if self.exception_at.size:
                total[at[self.exception_at]] += self.exception_values

    def unpacked(self) -> np.ndarray:
        total = np.zeros(self.size, dtype=np.int64)
        self.add_to(total)
        return total

    @property
    def nbytes(self) -> int:
        arrays = (self.values, self.where, self.exception_at, self.exception_values)
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True, eq=False)
class PackedSums:
    """Exact sums as one byte string: numerators without their trailing zeros, and their shifts."""

    blob: bytes  # each numerator >> shift, little-endian two's complement, back to back
    ends: np.ndarray  # uint32, where each numerator's bytes end in ``blob``
    shifts: np.ndarray  # uint16, the trailing zero bits stripped from each
    infinities: np.ndarray | None  # int64 (sums × 2): +inf and −inf terms, None when all are 0

    @classmethod
    def of(cls, sums: list[ExactSum]) -> PackedSums:
        pieces, ends, shifts, end = [], [], [], 0
        for s in sums:
            n = s.numerator
            shift = (n & -n).bit_length() - 1 if n else 0
            n >>= shift
            data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True) if n else b""
            pieces.append(data)
            end += len(data)
            ends.append(end)
            shifts.append(shift)
        infinities = None
        if any(s.positive_infinities or s.negative_infinities for s in sums):
            infinities = np.array([[s.positive_infinities, s.negative_infinities] for s in sums], dtype=np.int64)
        return cls(b"".join(pieces), np.array(ends, dtype=np.uint32), np.array(shifts, dtype=np.uint16), infinities)

    def numerators(self) -> list[int]:
        blob, out, start = self.blob, [], 0
        for end, shift in zip(self.ends.tolist(), self.shifts.tolist()):
            out.append(int.from_bytes(blob[start:end], "little", signed=True) << shift)
            start = end
        return out

    def sums(self) -> list[ExactSum]:
        numerators = self.numerators()
        if self.infinities is None:
            return [ExactSum(n) for n in numerators]
        return [ExactSum(n, int(p), int(q)) for n, (p, q) in zip(numerators, self.infinities.tolist())]

    @property
    def nbytes(self) -> int:
        extra = self.infinities.nbytes if self.infinities is not None else 0
        return len(self.blob) + self.ends.nbytes + self.shifts.nbytes + extra


@dataclass(frozen=True, eq=False)
class PackedBucket:
    """One bucket, packed; :func:`unpack` gives the :class:`Bucket` back exactly."""

    records: int
    labels: int
    present: int  # bit i set: the layout's summary i is in the bucket
    counts: PackedCounts
    missing: np.ndarray  # int64 per summary (0 where absent)
    minimum: np.ndarray  # float64 per numeric summary
    maximum: np.ndarray
    sums: PackedSums  # SUMS_PER_NUMERIC per numeric summary, in layout order
    performance: PerformanceSummary | None

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays and the sums' byte string (object headers aside)."""
        return self.counts.nbytes + self.missing.nbytes + self.minimum.nbytes * 2 + self.sums.nbytes


def _present_summaries(bucket: Bucket, layout: BucketLayout) -> dict[int, ColumnSummary]:
    index = {key: i for i, key in enumerate(layout.keys)}
    found: dict[int, ColumnSummary] = {}
    for name, summary in bucket.features.items():
        if name not in index:
            raise ValueError(f"feature {name!r} is not in the profile's layout")
        found[index[name]] = summary
    for key, part in _PARTS:
        summary = getattr(bucket, part)
        if summary is not None:
            if key not in index:
                raise ValueError(f"the profile has no {part} summary")
            found[index[key]] = summary
    return found


def pack(bucket: Bucket, layout: BucketLayout) -> PackedBucket:
    summaries = _present_summaries(bucket, layout)
    counts = np.zeros(layout.total, dtype=np.int64)
    missing = np.zeros(len(layout.keys), dtype=np.int64)
    numerics = layout.numerics
    minimum = np.full(numerics, np.inf)
    maximum = np.full(numerics, -np.inf)
    sums = [ExactSum()] * (numerics * SUMS_PER_NUMERIC)
    present = 0
    for i, summary in summaries.items():
        present |= 1 << i
        a, b = int(layout.offsets[i]), int(layout.offsets[i + 1])
        if summary.counts.size != b - a:
            raise ValueError(f"{layout.keys[i]!r}: {summary.counts.size} counts, the layout has {b - a}")
        counts[a:b] = summary.counts
        missing[i] = summary.missing
        k = layout.numeric[i]
        if k >= 0:
            assert isinstance(summary, NumericSummary)
            minimum[k], maximum[k] = summary.minimum, summary.maximum
            sums[k * SUMS_PER_NUMERIC : (k + 1) * SUMS_PER_NUMERIC] = [
                summary.total,
                summary.total_squares,
                summary.lower_tail_total,
                summary.upper_tail_total,
            ]
    return PackedBucket(
        bucket.records,
        bucket.labels,
        present,
        PackedCounts.of(counts),
        missing,
        minimum,
        maximum,
        PackedSums.of(sums),
        bucket.performance,
    )


def _bucket_of(
    layout: BucketLayout,
    records: int,
    labels: int,
    present: int,
    counts: np.ndarray,
    missing: list[int],
    minimum: list[float],
    maximum: list[float],
    sums: list[ExactSum],
    performance: PerformanceSummary | None,
) -> Bucket:
    features: dict[str, ColumnSummary] = {}
    parts: dict[str, ColumnSummary] = {}
    offsets = layout.offsets.tolist()
    for i, (key, reference) in enumerate(zip(layout.keys, layout.references)):
        if not present >> i & 1:
            continue
        own = counts[offsets[i] : offsets[i + 1]].copy()
        k = layout.numeric[i]
        if k >= 0:
            total, squares, lower, upper = sums[k * SUMS_PER_NUMERIC : (k + 1) * SUMS_PER_NUMERIC]
            summary: ColumnSummary = NumericSummary(
                reference.bins,  # type: ignore[arg-type]
                own,
                missing[i],
                total,
                squares,
                minimum[k],
                maximum[k],
                lower,
                upper,
            )
        else:
            summary = CategoricalSummary(reference.bins, own, missing[i])  # type: ignore[arg-type]
        if key in _PART_KEYS:
            parts[key] = summary
        else:
            features[key] = summary
    return Bucket(
        records,
        features,
        parts.get(PREDICTION),
        parts.get(LABEL),
        performance,
        parts.get(LOSS),  # type: ignore[arg-type]
        labels,
    )


def unpack(packed: PackedBucket, layout: BucketLayout) -> Bucket:
    return _bucket_of(
        layout,
        packed.records,
        packed.labels,
        packed.present,
        packed.counts.unpacked(),
        packed.missing.tolist(),
        packed.minimum.tolist(),
        packed.maximum.tolist(),
        packed.sums.sums(),
        packed.performance,
    )


def sum_packed(parts: list[PackedBucket], layout: BucketLayout) -> Bucket:
    """The sum of packed buckets as one :class:`Bucket` (equal to unpacking and adding them)."""
    if not parts:
        return Bucket()
    if len(parts) == 1:
        return unpack(parts[0], layout)
    total = OpenBucket(layout)
    for part in parts:
        total.add(part)
    return total.bucket()


class OpenBucket:
    """A bucket being merged into: every summary's counts in one int64 vector (the layout's
    order), the exact sums as integers, so adding a part — a :class:`Bucket` or a
    :class:`PackedBucket` — costs a few vector additions, whatever its number of summaries."""

    def __init__(self, layout: BucketLayout) -> None:
        self.layout = layout
        self.records = 0
        self.labels = 0
        self.present = 0
        self.counts = np.zeros(layout.total, dtype=np.int64)
        self.missing = np.zeros(len(layout.keys), dtype=np.int64)
        self.minimum = np.full(layout.numerics, np.inf)
        self.maximum = np.full(layout.numerics, -np.inf)
        sums = layout.numerics * SUMS_PER_NUMERIC
        self.numerators = [0] * sums
        self.infinities = np.zeros((sums, 2), dtype=np.int64)
        self.performance: PerformanceSummary | None = None

    def add(self, part: Bucket | PackedBucket | OpenBucket) -> None:
        if isinstance(part, PackedBucket):
            self._add_packed(part)
        elif isinstance(part, OpenBucket):
            self._add_open(part)
        else:
            self._add_bucket(part)
        self.records += part.records
        self.labels += part.labels
        if part.performance is not None:
            self.performance = part.performance if self.performance is None else self.performance + part.performance  # type: ignore[operator]

    def _add_packed(self, part: PackedBucket) -> None:
        self.present |= part.present
        part.counts.add_to(self.counts)
        self.missing += part.missing
        np.minimum(self.minimum, part.minimum, out=self.minimum)
        np.maximum(self.maximum, part.maximum, out=self.maximum)
        self.numerators = [a + b for a, b in zip(self.numerators, part.sums.numerators())]
        if part.sums.infinities is not None:
            self.infinities += part.sums.infinities

    def _add_open(self, part: OpenBucket) -> None:
        self.present |= part.present
        self.counts += part.counts
        self.missing += part.missing
        np.minimum(self.minimum, part.minimum, out=self.minimum)
        np.maximum(self.maximum, part.maximum, out=self.maximum)
        self.numerators = [a + b for a, b in zip(self.numerators, part.numerators)]
        self.infinities += part.infinities

    def _add_bucket(self, part: Bucket) -> None:
        layout, offsets = self.layout, self.layout.offsets
        for i, summary in _present_summaries(part, layout).items():
            a, b = int(offsets[i]), int(offsets[i + 1])
            if summary.counts.size != b - a:
                raise ValueError(f"{layout.keys[i]!r}: {summary.counts.size} counts, the layout has {b - a}")
            self.present |= 1 << i
            self.counts[a:b] += summary.counts
            self.missing[i] += summary.missing
            k = layout.numeric[i]
            if k >= 0:
                assert isinstance(summary, NumericSummary)
                self.minimum[k] = min(self.minimum[k], summary.minimum)
                self.maximum[k] = max(self.maximum[k], summary.maximum)
                totals = (summary.total, summary.total_squares, summary.lower_tail_total, summary.upper_tail_total)
                for j, total in enumerate(totals, k * SUMS_PER_NUMERIC):
                    self.numerators[j] += total.numerator
                    if total.positive_infinities or total.negative_infinities:
                        self.infinities[j] += (total.positive_infinities, total.negative_infinities)

    def _sums(self) -> list[ExactSum]:
        return [ExactSum(n, p, q) for n, (p, q) in zip(self.numerators, self.infinities.tolist())]

    def packed(self) -> PackedBucket:
        return PackedBucket(
            self.records,
            self.labels,
            self.present,
            PackedCounts.of(self.counts),
            self.missing.copy(),
            self.minimum.copy(),
            self.maximum.copy(),
            PackedSums.of(self._sums()),
            self.performance,
        )

    def bucket(self) -> Bucket:
        return _bucket_of(
            self.layout,
            self.records,
            self.labels,
            self.present,
            self.counts,
            self.missing.tolist(),
            self.minimum.tolist(),
            self.maximum.tolist(),
            self._sums(),
            self.performance,
        )

    @property
    def nbytes(self) -> int:
        """The counts' int64 vector and ~8 bytes per 64 bits of each numerator."""
        return self.counts.nbytes + sum(8 * (n.bit_length() // 64 + 1) for n in self.numerators)


HOT_BUCKETS = 1  # buckets per ring kept open while they are being merged into


class PackedRing(MutableMapping[int, Bucket]):
    """Slot start → bucket, kept packed: stores and reads :class:`Bucket` s.

    The bucket being merged into (the current slot's, per poll or partial) stays open — *hot*,
    an :class:`OpenBucket` — until a merge into another bucket: packing it at every merge would
    cost more than the merge. So a ring holds at most :data:`HOT_BUCKETS` open buckets; reads
    sum the packed ones without unpacking each and add the hot one.
    """

    def __init__(self, layout: BucketLayout) -> None:
        self.layout = layout
        self.packed: dict[int, PackedBucket] = {}
        self.hot: dict[int, OpenBucket] = {}  # disjoint from ``packed``; the most recently merged last

    def __getitem__(self, start: int) -> Bucket:
        hot = self.hot.get(start)
        return hot.bucket() if hot is not None else unpack(self.packed[start], self.layout)

    def __setitem__(self, start: int, bucket: Bucket) -> None:
        self.hot.pop(start, None)
        self.packed[start] = pack(bucket, self.layout)

    def __delitem__(self, start: int) -> None:
        if self.hot.pop(start, None) is None:
            del self.packed[start]

    def __iter__(self) -> Iterator[int]:
        yield from list(self.packed)
        yield from list(self.hot)

    def __len__(self) -> int:
        return len(self.packed) + len(self.hot)

    def merge(self, start: int, parts: list[Bucket | PackedBucket]) -> None:
        """Add ``parts`` to the bucket at ``start`` (created if absent)."""
        known = self.hot.pop(start, None)
        if known is None:
            known = OpenBucket(self.layout)
            if start in self.packed:
                known.add(self.packed.pop(start))
        for part in parts:
            known.add(part)
        self.hot[start] = known
        while len(self.hot) > HOT_BUCKETS:
            oldest = next(iter(self.hot))
            self.packed[oldest] = self.hot.pop(oldest).packed()

    def sum(self, starts: Iterable[int]) -> Bucket:
        """The buckets at ``starts`` added up, the packed ones without unpacking each."""
        wanted = list(starts)
        hot = [self.hot[s] for s in wanted if s in self.hot]
        packed = [self.packed[s] for s in wanted if s in self.packed]
        if not hot:
            return sum_packed(packed, self.layout)
        if not packed and len(hot) == 1:
            return hot[0].bucket()
        total = OpenBucket(self.layout)
        parts: list[PackedBucket | OpenBucket] = [*packed, *hot]
        for part in parts:
            total.add(part)
        return total.bucket()

    def packed_items(self) -> Iterator[tuple[int, PackedBucket]]:
        """Every bucket packed (the hot one packed on the way, left hot), by start."""
        for start in sorted(self):
            packed = self.packed.get(start)
            yield start, packed if packed is not None else self.hot[start].packed()

    @property
    def nbytes(self) -> int:
        """Bytes of the packed arrays, plus the hot buckets' (:attr:`OpenBucket.nbytes`)."""
        return sum(p.nbytes for p in self.packed.values()) + sum(h.nbytes for h in self.hot.values())


# ---------------------------------------------------------------------------------------------
# Packed counts, sums and buckets as rows of binary columns, little-endian: checkpoints
# (format 2: a row per bucket) and summary messages (format 2: a row per summary) store them so.

COUNTS_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("counts_size", pa.int64()),
    ("counts_form", pa.string()),
    ("counts_width", pa.int8()),  # bytes per stored count: 1, 2 or 4
    ("counts_values", pa.binary()),
    ("counts_where", pa.binary()),  # positions (uint32) or the bitmap; null when dense
    ("exception_at", pa.binary()),  # uint32
    ("exception_values", pa.binary()),  # int64
)
SUMS_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("sums", pa.binary()),
    ("sums_ends", pa.binary()),  # uint32
    ("sums_shifts", pa.binary()),  # uint16
    ("sums_infinities", pa.binary()),  # int64 pairs; null when none
)
PACKED_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("records", pa.int64()),
    ("labels", pa.int64()),
    ("present", pa.binary()),  # the presence bits, little-endian
    *COUNTS_FIELDS,
    ("missing", pa.binary()),  # int64 per summary of the layout
    ("minimum", pa.binary()),  # float64 per numeric summary
    ("maximum", pa.binary()),
    *SUMS_FIELDS,
)
_WIDTH_OF = {dtype.itemsize: dtype for dtype in _WIDTHS}


def counts_fields(counts: PackedCounts) -> dict[str, object]:
    return {
        "counts_size": counts.size,
        "counts_form": counts.form,
        "counts_width": counts.values.dtype.itemsize,
        "counts_values": counts.values.tobytes(),
        "counts_where": None if counts.where is None else counts.where.tobytes(),
        "exception_at": counts.exception_at.tobytes(),
        "exception_values": counts.exception_values.tobytes(),
    }


def sums_fields(sums: PackedSums) -> dict[str, object]:
    return {
        "sums": sums.blob,
        "sums_ends": sums.ends.astype("<u4").tobytes(),
        "sums_shifts": sums.shifts.astype("<u2").tobytes(),
        "sums_infinities": None if sums.infinities is None else sums.infinities.astype("<i8").tobytes(),
    }


def packed_row(packed: PackedBucket) -> dict[str, object]:
    """The :data:`PACKED_FIELDS` of one packed bucket (the performance summary is the caller's)."""
    return {
        "records": packed.records,
        "labels": packed.labels,
        "present": packed.present.to_bytes((packed.present.bit_length() + 7) // 8, "little"),
        **counts_fields(packed.counts),
        "missing": packed.missing.astype("<i8").tobytes(),
        "minimum": packed.minimum.astype("<f8").tobytes(),
        "maximum": packed.maximum.astype("<f8").tobytes(),
        **sums_fields(packed.sums),
    }


def _array(row: dict[str, object], name: str, dtype: str, length: int | None = None) -> np.ndarray:
    data = row.get(name)
    if not isinstance(data, bytes):
        raise ValueError(f"{name}: expected bytes")
    width = np.dtype(dtype).itemsize
    if len(data) % width or (length is not None and len(data) != length * width):
        raise ValueError(f"{name}: {len(data)} bytes do not hold {length if length is not None else 'whole'} values")
    return np.frombuffer(data, dtype=dtype).copy()


def counts_from_fields(row: dict[str, object], size: int) -> PackedCounts:
    """The inverse of :func:`counts_fields` for ``size`` counts; ValueError names what is wrong."""
    if row.get("counts_size") != size:
        raise ValueError(f"expected {size} non-negative counts, got {row.get('counts_size')!r}")
    stored_width = row.get("counts_width")
    width = _WIDTH_OF.get(stored_width) if isinstance(stored_width, int) else None
    form = row.get("counts_form")
    if width is None or form not in (DENSE, POSITIONS, BITMAP):
        raise ValueError(f"counts stored as {form!r} of width {row.get('counts_width')!r}")
    values = _array(row, "counts_values", width.str)
    where = None
    if form == DENSE:
        if values.size != size:
            raise ValueError("dense counts: one per bin expected")
    elif form == POSITIONS:
        where = _array(row, "counts_where", "<u4", values.size)
        if where.size and (int(where.max()) >= size or bool((np.diff(where.astype(np.int64)) <= 0).any())):
            raise ValueError("count positions out of range or not increasing")
    else:
        where = _array(row, "counts_where", "u1", (size + 7) // 8)
        if int(np.unpackbits(where, count=size).sum()) != values.size:
            raise ValueError("the count bitmap and the counts disagree")
    exception_at = _array(row, "exception_at", "<u4")
    exception_values = _array(row, "exception_values", "<i8", exception_at.size)
    if exception_at.size and (int(exception_at.max()) >= values.size or int(exception_values.min()) < 0):
        raise ValueError("count exceptions out of range or negative")
    return PackedCounts(
        size,
        values.astype(width),
        str(form),
        where,
        exception_at.astype(np.uint32),
        exception_values.astype(np.int64),
    )


def sums_from_fields(row: dict[str, object], count: int) -> PackedSums:
    """The inverse of :func:`sums_fields` for ``count`` sums; ValueError names what is wrong."""
    ends = _array(row, "sums_ends", "<u4", count)
    blob = row.get("sums")
    if not isinstance(blob, bytes) or (ends.size and (int(ends[-1]) != len(blob) or bool((np.diff(ends) < 0).any()))):
        raise ValueError("exact sums do not match their ends")
    if not ends.size and blob:
        raise ValueError("exact sums without ends")
    infinities = None
    if row.get("sums_infinities") is not None:
        infinities = _array(row, "sums_infinities", "<i8", count * 2).reshape(-1, 2)
        if infinities.size and int(infinities.min()) < 0:
            raise ValueError("infinite terms must be counted non-negatively")
    shifts = _array(row, "sums_shifts", "<u2", count)
    return PackedSums(blob, ends.astype(np.uint32), shifts.astype(np.uint16), infinities)


def packed_from_row(
    row: dict[str, object], layout: BucketLayout, performance: PerformanceSummary | None
) -> PackedBucket:
    """The inverse of :func:`packed_row`, checked against ``layout``; ValueError names what is wrong."""
    records, labels = row.get("records"), row.get("labels")
    for name, value in (("records", records), ("labels", labels)):
        if type(value) is not int or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    present_bytes = row.get("present")
    if not isinstance(present_bytes, bytes):
        raise ValueError("present: expected bytes")
    present = int.from_bytes(present_bytes, "little")
    if present >> len(layout.keys):
        raise ValueError("present names summaries the profile does not have")
    counts = counts_from_fields(row, layout.total)
    missing = _array(row, "missing", "<i8", len(layout.keys))
    if missing.size and int(missing.min()) < 0:
        raise ValueError("missing counts must be non-negative")
    numerics = layout.numerics
    return PackedBucket(
        records,  # type: ignore[arg-type]
        labels,  # type: ignore[arg-type]
        present,
        counts,
        missing.astype(np.int64),
        _array(row, "minimum", "<f8", numerics).astype(np.float64),
        _array(row, "maximum", "<f8", numerics).astype(np.float64),
        sums_from_fields(row, numerics * SUMS_PER_NUMERIC),
        performance,
    )
