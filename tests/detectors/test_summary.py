from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import detectors.exact_sum as exact_sum_module
import detectors.summary as summary_module
from detectors.binning import CategoricalBins, NumericBins
from detectors.summary import CategoricalSummary, NumericSummary, _fold_unsorted
from tests.detectors.strategies import category_arrays, finite_arrays, float_arrays


@given(finite_arrays(min_size=1, max_size=200), float_arrays(), float_arrays())
def test_numeric_summaries_add_exactly(reference, a, b):
    bins = NumericBins.from_reference(reference, fine_bins=20, psi_bins=5)
    merged = NumericSummary.fold(bins, a) + NumericSummary.fold(bins, b)
    assert merged == NumericSummary.fold(bins, np.concatenate([a, b]))
    assert NumericSummary.empty(bins) + merged == merged  # the empty summary is the identity


@given(finite_arrays(min_size=1, max_size=100), st.lists(float_arrays(max_size=60), min_size=1, max_size=6))
def test_merge_order_does_not_matter(reference, parts):
    bins = NumericBins.from_reference(reference, fine_bins=10, psi_bins=2)
    summaries = [NumericSummary.fold(bins, p) for p in parts]
    forward = summaries[0]
    for s in summaries[1:]:
        forward = forward + s
    backward = summaries[-1]
    for s in reversed(summaries[:-1]):
        backward = s + backward
    assert forward == backward == NumericSummary.fold(bins, np.concatenate(parts))


@given(category_arrays(min_size=1), category_arrays(), category_arrays())
def test_categorical_summaries_add_exactly(reference, a, b):
    bins = CategoricalBins.from_reference(reference, top_k=3)
    merged = CategoricalSummary.fold(bins, a) + CategoricalSummary.fold(bins, b)
    assert merged == CategoricalSummary.fold(bins, np.concatenate([a, b]))


def test_missing_values_are_counted_not_binned():
    bins = NumericBins.from_reference(np.arange(10.0))
    s = NumericSummary.fold(bins, np.array([1.0, np.nan, np.inf, -np.inf, 2.0]))
    assert (s.count, s.missing, s.rows) == (2, 3, 5)
    assert s.missing_ratio == 0.6
    assert (s.minimum, s.maximum, s.mean) == (1.0, 2.0, 1.5)


def test_moments_match_numpy():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, 10_000)
    s = NumericSummary.fold(NumericBins.from_reference(values), values)
    assert s.mean == pytest.approx(values.mean(), rel=1e-12)
    assert s.std == pytest.approx(values.std(), rel=1e-9)


def test_summaries_over_different_bins_do_not_merge():
    a = NumericSummary.empty(NumericBins.from_reference(np.arange(10.0)))
    b = NumericSummary.empty(NumericBins.from_reference(np.arange(11.0)))
    with pytest.raises(ValueError, match="different bins"):
        a + b
    c = CategoricalSummary.empty(CategoricalBins(("x",)))
    d = CategoricalSummary.empty(CategoricalBins(("y",)))
    with pytest.raises(ValueError, match="different categories"):
        c + d


def test_categorical_from_counts_matches_fold():
    bins = CategoricalBins(("DE", "FR"))
    folded = CategoricalSummary.fold(bins, np.array(["DE", "US", "FR", "DE", None], dtype=object))
    counted = CategoricalSummary.from_counts(bins, ["DE", "FR", "US"], [2, 1, 1], missing=1)
    assert folded == counted


@st.composite
def groups_of(draw, arrays):  # type: ignore[no-untyped-def]
    values = draw(arrays)
    cuts = sorted(draw(st.lists(st.integers(0, len(values)), max_size=5)))
    return values, np.array([0, *cuts, len(values)], dtype=np.int64)


@given(finite_arrays(min_size=1, max_size=100), groups_of(float_arrays()))
def test_folding_groups_at_once_equals_folding_each(reference, case):
    values, bounds = case
    bins = NumericBins.from_reference(reference, fine_bins=20, psi_bins=5)
    together = NumericSummary.fold_groups(bins, values, bounds)
    assert len(together) == bounds.size - 1
    for summary, (a, b) in zip(together, zip(bounds[:-1], bounds[1:])):
        assert summary == NumericSummary.fold(bins, values[a:b])
    assert NumericSummary.sum(together) == NumericSummary.fold(bins, values)


@given(category_arrays(min_size=1), groups_of(category_arrays()))
def test_categorical_groups_at_once_equal_folding_each(reference, case):
    values, bounds = case
    bins = CategoricalBins.from_reference(reference, top_k=3)
    names = sorted({str(v) for v in values if v is not None})
    codes = np.array([-1 if v is None else names.index(str(v)) for v in values], dtype=np.int64)
    together = CategoricalSummary.fold_groups(bins, names, codes, bounds)

    def counted(part: np.ndarray) -> CategoricalSummary:  # what the windows did per group: count, then bin
        counts = Counter(str(v) for v in part if v is not None)
        return CategoricalSummary.from_counts(bins, list(counts), list(counts.values()), sum(v is None for v in part))

    for summary, (a, b) in zip(together, zip(bounds[:-1], bounds[1:])):
        assert summary == counted(values[a:b])
    assert CategoricalSummary.sum(together) == counted(values)


@st.composite
def column_groups(draw):  # type: ignore[no-untyped-def]
    """Several columns of one length (NaN, ±inf and out-of-range values included), non-empty groups."""
    rows = draw(st.integers(1, 120))
    columns = draw(st.lists(float_arrays(min_size=rows, max_size=rows), min_size=1, max_size=4))
    cuts = sorted(set(draw(st.lists(st.integers(1, rows - 1), max_size=5)))) if rows > 1 else []
    return np.vstack(columns), np.array([0, *cuts, rows], dtype=np.int64)


@given(st.lists(finite_arrays(min_size=1, max_size=100), min_size=4, max_size=4), column_groups())
def test_folding_columns_at_once_equals_folding_each(references, case):
    values, bounds = case
    bins = [NumericBins.from_reference(r, fine_bins=20, psi_bins=5) for r in references[: values.shape[0]]]
    together = NumericSummary.fold_columns(bins, values.copy(), bounds)
    assert len(together) == values.shape[0]
    for column_bins, column, folded in zip(bins, values, together):
        assert folded == NumericSummary.fold_groups(column_bins, column, bounds)


@st.composite
def unsorted_case(draw):  # type: ignore[no-untyped-def]
    """A column with NaN, ±inf, zeros of both signs and values outside the reference, cut into groups."""
    values = draw(float_arrays(min_size=1, max_size=400))
    cuts = sorted(draw(st.lists(st.integers(0, values.size), max_size=6)))
    return values, np.array([0, *cuts, values.size], dtype=np.int64)


@given(finite_arrays(min_size=1, max_size=100), unsorted_case(), st.sampled_from([1, 3, 16, 64, 1 << 15]))
def test_folding_without_a_sort_equals_sorting(reference, case, chunk):
    """The unsorted fold (large batches) equals the sorting one, whatever the chunking."""
    values, bounds = case
    bins = NumericBins.from_reference(reference, fine_bins=20, psi_bins=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(summary_module, "CHUNK", chunk)
        patch.setattr(exact_sum_module, "CHUNK", chunk)
        unsorted = _fold_unsorted(NumericSummary, bins, values, bounds)
    assert unsorted == NumericSummary._fold_groups_sorted(bins, values.copy(), bounds)


@pytest.mark.parametrize("shape", ["normal", "wide", "tiny", "spread", "huge", "missing"])
def test_large_batches_fold_without_a_sort_to_the_same_summaries(shape):
    rng = np.random.default_rng(11)
    n = 150_000
    values = {
        "normal": rng.normal(size=n),
        "wide": rng.lognormal(0, 6, n) * rng.choice([-1.0, 1.0], n),
        "tiny": rng.normal(size=n) * 1e-300,  # subnormals and their squares' underflow
        "spread": rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n),  # squares overflow to inf
        "huge": rng.normal(size=n) * 1e307,  # σ would overflow: the exact integer way
        "missing": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
    }[shape]
    values[rng.random(n) < 0.01] = np.inf
    bins = NumericBins.from_reference(rng.normal(size=3_000), fine_bins=1000, psi_bins=10)
    bounds = np.array([0, 7, 40_000, 40_000, 100_003, n])
    assert values.size >= summary_module.UNSORTED_FROM
    together = NumericSummary.fold_groups(bins, values, bounds)  # the unsorted path at this size
    assert together == NumericSummary._fold_groups_sorted(bins, values.copy(), bounds)
