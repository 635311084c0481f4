import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.bin_lookup import FineLookup
from detectors.binning import NumericBins
from tests.detectors.strategies import finite_arrays, finite_floats

# Values that probe the grid's corners: both zeros, the extremes, subnormals.
corners = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0])


def _probes(edges: np.ndarray, extra: list[float]) -> np.ndarray:
    around = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    return np.concatenate([around, np.array(extra, dtype=np.float64)])


@given(finite_arrays(min_size=2, max_size=300), st.lists(st.one_of(finite_floats, corners), max_size=50))
def test_lookup_equals_searchsorted(reference, extra):
    edges = NumericBins.from_reference(reference, fine_bins=50, psi_bins=5).edges
    lookup = FineLookup.build(edges)
    values = _probes(edges, extra)
    if lookup is not None:
        assert lookup.index(values).tolist() == np.searchsorted(edges, values, side="right").tolist()


@given(st.sampled_from(["normal", "lognormal", "wide", "far"]), st.integers(0, 2**32 - 1))
def test_common_references_get_a_lookup_and_it_is_exact(kind, seed):
    rng = np.random.default_rng(seed)
    reference = {
        "normal": rng.normal(size=2_000),
        "lognormal": rng.lognormal(sigma=2.0, size=2_000),  # many orders of magnitude
        "wide": rng.normal(size=2_000) * 1e300,
        "far": 1e9 + rng.normal(size=2_000),
    }[kind]
    bins = NumericBins.from_reference(reference)
    values = np.concatenate([rng.choice(reference, 5_000), _probes(bins.edges, [0.0, -0.0, 1e308, -1e308])])
    assert bins.fine_index(values).tolist() == np.searchsorted(bins.edges, values, side="right").tolist()


def test_typical_references_get_the_grid_they_suit():
    rng = np.random.default_rng(7)
    normal = FineLookup.build(NumericBins.from_reference(rng.normal(size=20_000)).edges)
    spread = FineLookup.build(NumericBins.from_reference(rng.lognormal(size=20_000) * 1e-200).edges)
    assert normal is not None and not normal.bitwise
    assert spread is not None and spread.bitwise  # values ≈ 1e-200: only the bit pattern resolves them


def test_no_lookup_where_edges_crowd_one_cell():
    # Half the edges within 1e-6 of zero, half spread to ±1e3 with 0 between: both grids are deep.
    rng = np.random.default_rng(3)
    reference = np.concatenate([rng.normal(size=5_000) * 1e-6, rng.normal(size=5_000) * 1e3])
    bins = NumericBins.from_reference(reference)
    assert FineLookup.build(bins.edges) is None
    values = rng.normal(size=1_000)
    assert bins.fine_index(values).tolist() == np.searchsorted(bins.edges, values, side="right").tolist()
    assert FineLookup.build(np.array([1.0])) is None  # one edge: nothing to grid
