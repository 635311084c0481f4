"""Packed window buckets: exact round trips, sums without unpacking, and the forms chosen."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.exact_sum import ExactSum
from detectors.profile import build_profile
from exporter.demo.synthetic import prediction_log, synthetic_table
from exporter.pipeline.buckets import Bucket, prediction_buckets
from exporter.pipeline.packed import (
    BITMAP,
    DENSE,
    POSITIONS,
    BucketLayout,
    PackedCounts,
    PackedRing,
    PackedSums,
    pack,
    sum_packed,
    unpack,
)

SHAPE = {"numeric": 6, "categorical": 2, "drifted": 2}


@pytest.fixture(scope="module")
def profile():
    return build_profile(
        synthetic_table(5_000, seed=1, **SHAPE),
        model="m",
        model_version="1",
        created_at=0.0,
        prediction="prediction",
        label="label",
    )


def _bucket(profile, rows: int, seed: int) -> Bucket:
    table = synthetic_table(rows, seed=seed, drift=seed % 2 == 1, **SHAPE)
    (bucket,) = prediction_buckets(profile, prediction_log(table, "m", "1", np.full(rows, 30.0)), 60).buckets.values()
    return bucket


@pytest.mark.parametrize("rows", [1, 40, 3_000, 200_000])
def test_pack_and_unpack_are_exact_inverses(profile, rows):
    layout = BucketLayout.of(profile)
    bucket = _bucket(profile, rows, seed=rows)
    assert unpack(pack(bucket, layout), layout) == bucket


def test_a_window_sums_packed_buckets_as_it_summed_buckets(profile):
    layout = BucketLayout.of(profile)
    buckets = [_bucket(profile, rows, seed) for seed, rows in enumerate([5, 500, 20_000, 1])]
    label_only = Bucket(label=profile.label, labels=7)  # a bucket with no features: presence is kept
    parts = [*buckets, label_only]
    assert sum_packed([pack(b, layout) for b in parts], layout) == Bucket.sum(parts)
    assert sum_packed([], layout) == Bucket()


def test_a_ring_stores_and_reads_buckets(profile):
    ring = PackedRing(BucketLayout.of(profile))
    first, second = _bucket(profile, 100, 3), _bucket(profile, 200, 4)
    ring.merge(60, [first])
    ring.merge(60, [second])
    ring[120] = first
    assert dict(ring) == {60: first + second, 120: first}
    assert ring.sum([60, 120]) == first + second + first
    del ring[60]
    assert list(ring) == [120] and len(ring) == 1 and ring.nbytes > 0


def test_forms_follow_the_traffic():
    size = 10_000
    few = np.zeros(size, dtype=np.int64)
    few[:2_000:20] = 2
    few[9_999] = 70_000  # a hundred bins: positions; the one large count an exception, not a wider type
    packed = PackedCounts.of(few)
    assert packed.form == POSITIONS and packed.values.dtype == np.uint8 and packed.exception_values.tolist() == [70_000]
    half = np.zeros(size, dtype=np.int64)
    half[::2] = 9
    assert PackedCounts.of(half).form == BITMAP
    busy = np.random.default_rng(1).poisson(3_600, size)
    packed = PackedCounts.of(busy)
    assert packed.form == DENSE and packed.values.dtype == np.uint16
    for counts in (few, half, busy, np.zeros(size, dtype=np.int64)):
        assert PackedCounts.of(counts).unpacked().tolist() == counts.tolist()


@settings(max_examples=200)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=300), st.integers(0, 2))
def test_counts_of_any_size_round_trip(values, spread):
    counts = np.zeros(len(values) * (1 + spread * 10), dtype=np.int64)
    counts[:: 1 + spread * 10] = values
    assert PackedCounts.of(counts).unpacked().tolist() == counts.tolist()


@given(
    st.lists(st.tuples(st.integers(-(2**1300), 2**1300), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=20)
)
def test_exact_sums_round_trip(parts):
    sums = [ExactSum(n, p, q) for n, p, q in parts]
    packed = PackedSums.of(sums)
    assert packed.sums() == sums
    assert packed.numerators() == [n for n, _, _ in parts]


def test_only_the_bucket_being_merged_into_stays_unpacked(profile):
    ring = PackedRing(BucketLayout.of(profile))
    parts = [_bucket(profile, 50, seed) for seed in range(4)]
    ring.merge(0, [parts[0]])
    ring.merge(0, [parts[1]])
    assert list(ring.hot) == [0] and not ring.packed
    ring.merge(60, [parts[2]])  # a merge into another bucket packs the previous one
    assert list(ring.hot) == [60] and list(ring.packed) == [0]
    ring.merge(0, [parts[3]])  # late data for a packed bucket: unpacked, merged, hot again
    assert list(ring.hot) == [0] and list(ring.packed) == [60]
    assert ring[0] == Bucket.sum([parts[0], parts[1], parts[3]]) and ring[60] == parts[2]
    assert ring.sum([0, 60]) == Bucket.sum(parts)
    assert [start for start, _ in ring.packed_items()] == [0, 60] and list(ring.hot) == [0]
