"""Hypothesis strategies for numeric and categorical columns."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Finite values across many magnitudes, with ties, plus the specials that count as missing.
finite_floats = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.integers(-5, 5).map(float),
    st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
)
any_floats = st.one_of(finite_floats, st.sampled_from([np.nan, np.inf, -np.inf]))


def float_arrays(min_size: int = 0, max_size: int = 300, allow_missing: bool = True) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(
        np.float64,
        st.integers(min_size, max_size),
        elements=any_floats if allow_missing else finite_floats,
    )


def finite_arrays(min_size: int = 1, max_size: int = 300) -> st.SearchStrategy[np.ndarray]:
    return float_arrays(min_size, max_size, allow_missing=False)


categories = st.one_of(st.sampled_from(["a", "b", "c", "d", "__other__", ""]), st.text(max_size=3), st.none())


def category_arrays(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[np.ndarray]:
    return st.lists(categories, min_size=min_size, max_size=max_size).map(lambda xs: np.array(xs, dtype=object))
