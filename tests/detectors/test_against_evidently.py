"""Cross-check the Evidently-compatible statistics against Evidently 0.7 itself.

Evidently is the oracle here, called two ways:

(a) its legacy stat-test functions (``psi_stat_test``, ``ks_stat_test``), fed the values
    exactly as Evidently's drift calculation cleans them (±inf → NaN, then ``dropna``);
(b) end to end: a new-API ``Report`` (``DataDriftPreset`` and ``ValueDrift``) on a pandas
    DataFrame with an explicit ``DataDefinition``, compared with ``run_drift(...,
    binning="evidently")`` on the same data written to Parquet.

The contract (docs/statistics.md, "What is computed"): our Evidently-compatible PSI and
our exact KS p-value equal Evidently's to 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("evidently")

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.legacy.calculations.stattests import ks_stat_test, psi_stat_test  # noqa: E402
from evidently.legacy.core import ColumnType  # noqa: E402
from evidently.metrics import ValueDrift  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

from detectors.compare import compare_evidently  # noqa: E402
from detectors.ks import ks_exact  # noqa: E402
from detectors.psi import evidently_shares, psi_evidently  # noqa: E402
from exporter.offline.drift import run_drift  # noqa: E402

TOL = 1e-9


def assert_same(ours: float, theirs: float, what: str) -> None:
    theirs = float(theirs)
    assert math.isfinite(ours) and math.isfinite(theirs), f"{what}: ours={ours!r}, Evidently={theirs!r}"
    assert abs(ours - theirs) <= TOL, f"{what}: ours={ours!r}, Evidently={theirs!r}, diff={ours - theirs:.3e}"


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class Case:
    """One column: raw reference and current values (NaN/±inf/None included) and its kind."""

    reference: np.ndarray
    current: np.ndarray
    kind: str  # "numeric" | "categorical"
    bins: int | None = None  # expected number of Evidently PSI bins, where the case pins it


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _with_missing(values: np.ndarray, rng: np.random.Generator, share: float = 0.05) -> np.ndarray:
    """Replace a share of the values by NaN, +inf and -inf (a third each)."""
    out = values.astype(np.float64).copy()
    idx = rng.choice(out.size, int(out.size * share), replace=False)
    out[idx[0::3]] = np.nan
    out[idx[1::3]] = np.inf
    out[idx[2::3]] = -np.inf
    return out


def _categories(
    rng: np.random.Generator, labels: list[str], p: list[float], size: int, missing: float = 0.0
) -> np.ndarray:
    out = rng.choice(np.array(labels, dtype=object), size=size, p=p)
    if missing:
        out[rng.random(size) < missing] = None
    return out


CASES: dict[str, Callable[[], Case]] = {
    # Continuous numeric, > 20 distinct values: Sturges edges over reference+current.
    "normal_same": lambda: Case(_rng(1).normal(0, 1, 5_000), _rng(2).normal(0, 1, 3_000), "numeric"),
    "normal_shift": lambda: Case(_rng(3).normal(0, 1, 5_000), _rng(4).normal(0.5, 1.3, 3_000), "numeric"),
    "lognormal_same": lambda: Case(_rng(5).lognormal(0, 1, 4_000), _rng(6).lognormal(0, 1, 4_000), "numeric"),
    "lognormal_drift": lambda: Case(_rng(7).lognormal(0, 1, 4_000), _rng(8).lognormal(0.4, 1.5, 1_500), "numeric"),
    "uniform_same": lambda: Case(_rng(9).uniform(-2, 5, 2_000), _rng(10).uniform(-2, 5, 6_000), "numeric"),
    "uniform_drift": lambda: Case(_rng(11).uniform(0, 1, 2_000), _rng(12).uniform(0.3, 1.6, 2_000), "numeric"),
    # Many ties and values sitting exactly on equal-width edges.
    "rounded_normal": lambda: Case(
        np.round(_rng(13).normal(0, 1, 5_000), 1), np.round(_rng(14).normal(0.2, 1, 2_000), 1), "numeric"
    ),
    # Sizes far apart, and tiny samples (scipy's exact KS branch).
    "big_ref_small_cur": lambda: Case(_rng(15).normal(0, 1, 30_000), _rng(16).normal(0.1, 1, 250), "numeric"),
    "small_ref_big_cur": lambda: Case(_rng(17).normal(0, 1, 300), _rng(18).normal(0, 1.2, 20_000), "numeric"),
    "tiny": lambda: Case(_rng(19).normal(0, 1, 40), _rng(20).normal(0.3, 1, 25), "numeric"),
    # Low-cardinality numeric (<= 20 distinct in the reference): one bin per value.
    "int_0_5_same": lambda: Case(_rng(21).integers(0, 6, 3_000), _rng(22).integers(0, 6, 2_000), "numeric", 6),
    "int_0_5_drift": lambda: Case(
        _rng(23).choice(6, 3_000, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05]),
        _rng(24).choice(6, 1_000, p=[0.1, 0.1, 0.2, 0.2, 0.2, 0.2]),
        "numeric",
        6,
    ),
    # A value only in current (7, 8) and one only in reference (0): union of values as bins.
    "int_values_only_one_side": lambda: Case(
        _rng(25).integers(0, 6, 3_000), _rng(26).integers(1, 9, 2_000), "numeric", 9
    ),
    "float_low_cardinality_with_missing": lambda: Case(
        _with_missing(_rng(27).choice([0.5, 1.5, 2.5, 10.0], 3_000), _rng(28)),
        _with_missing(_rng(29).choice([0.5, 1.5, 2.5], 2_000), _rng(30)),
        "numeric",
        4,
    ),
    # The rule's boundary: exactly 20 distinct reference values → one bin per value;
    # 21 → Sturges (ceil(log2(1800) + 1) = 12 equal-width bins).
    "int_20_distinct": lambda: Case(_rng(31).integers(0, 20, 1_000), _rng(32).integers(0, 20, 800), "numeric", 20),
    "int_21_distinct": lambda: Case(_rng(33).integers(0, 21, 1_000), _rng(34).integers(0, 21, 800), "numeric", 12),
    # 20 distinct in the reference, more in current: still one bin per value (union: 25).
    "int_20_distinct_current_wider": lambda: Case(
        _rng(35).integers(0, 20, 1_000), _rng(36).integers(0, 25, 800), "numeric", 25
    ),
    # 21 distinct in the reference, 3 in current: Sturges.
    "int_21_distinct_current_narrow": lambda: Case(
        _rng(37).integers(0, 21, 1_000), _rng(38).integers(5, 8, 800), "numeric", 12
    ),
    # NaN and ±inf (Evidently drops them) in continuous columns.
    "normal_with_nan_inf": lambda: Case(
        _with_missing(_rng(39).normal(0, 1, 4_000), _rng(40), 0.1),
        _with_missing(_rng(41).normal(0.2, 1, 2_500), _rng(42), 0.03),
        "numeric",
    ),
    # Categorical strings, including categories only in current / only in reference.
    "cat_same": lambda: Case(
        _categories(_rng(43), ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], 3_000),
        _categories(_rng(44), ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], 2_000),
        "categorical",
        4,
    ),
    "cat_new_and_gone": lambda: Case(
        _categories(_rng(45), ["a", "b", "c", "gone"], [0.5, 0.3, 0.15, 0.05], 3_000, missing=0.05),
        _categories(_rng(46), ["a", "b", "c", "new", "also_new"], [0.3, 0.3, 0.2, 0.15, 0.05], 1_200, missing=0.1),
        "categorical",
        6,
    ),
    # The reference's smallest share is below 1e-4, so its zero share (for "new") becomes
    # that share / 1e6; "rare" is absent from current, whose zero share becomes 1e-4.
    "cat_rare": lambda: Case(
        _categories(_rng(47), ["x", "y", "rare"], [0.6, 0.39995, 0.00005], 200_000),
        _categories(_rng(48), ["x", "y", "new"], [0.5, 0.49, 0.01], 500),
        "categorical",
        4,
    ),
    # High cardinality: categorical is always one bin per value, never Sturges.
    "cat_high_cardinality": lambda: Case(
        np.array([f"k{v}" for v in _rng(49).zipf(1.5, 5_000) % 300], dtype=object),
        np.array([f"k{v}" for v in _rng(50).zipf(1.3, 3_000) % 300], dtype=object),
        "categorical",
    ),
}


def present(values: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """Our side: present values only (NaN/±inf/None removed) and the missing count."""
    if kind == "categorical":
        mask = np.array([v is not None for v in values], dtype=bool)
        return values[mask].astype(str), int((~mask).sum())
    if values.dtype.kind in "iu":
        return values, 0
    mask = np.isfinite(values)
    return values[mask], int((~mask).sum())


def evidently_clean(values: np.ndarray) -> pd.Series:
    """Evidently's side: what ``get_one_column_drift`` does before calling a stat test."""
    return pd.Series(values).replace([-np.inf, np.inf], np.nan).dropna()


# ------------------------------------------------------------- (a) legacy stat tests


@pytest.mark.parametrize("name", sorted(CASES))
def test_psi_and_ks_match_evidently_stattests(name: str) -> None:
    case = CASES[name]()
    ref, ref_missing = present(case.reference, case.kind)
    cur, cur_missing = present(case.current, case.kind)
    column_type = ColumnType.Numerical if case.kind == "numeric" else ColumnType.Categorical
    ev_ref, ev_cur = evidently_clean(case.reference), evidently_clean(case.current)
    assert (len(ev_ref), len(ev_cur)) == (ref.size, cur.size)

    their_psi = psi_stat_test(ev_ref, ev_cur, column_type, 0.1).drift_score
    assert_same(psi_evidently(ref, cur, numeric=case.kind == "numeric"), their_psi, f"{name}: psi_evidently")
    result = compare_evidently(ref, cur, case.kind, ref_missing, cur_missing)  # type: ignore[arg-type]
    assert_same(result.psi, their_psi, f"{name}: compare_evidently PSI")
    assert result.reference_count == ref.size and result.current_count == cur.size

    if case.bins is not None:  # the binning branch the case is about was taken
        p, q = evidently_shares(ref, cur, numeric=case.kind == "numeric")
        assert p.size == q.size == case.bins, f"{name}: {p.size} bins"

    if case.kind == "numeric":
        their_p = ks_stat_test(ev_ref, ev_cur, column_type, 0.05).drift_score
        assert result.ks_pvalue is not None
        assert_same(result.ks_pvalue, their_p, f"{name}: compare_evidently KS p-value")
        assert_same(ks_exact(ref, cur).pvalue, their_p, f"{name}: ks_exact p-value")
        # Tiny p-values must agree relatively too, not just both be ~0.
        assert math.isclose(result.ks_pvalue, their_p, rel_tol=1e-9, abs_tol=1e-300)


def test_categorical_psi_with_numeric_labels_matches_evidently() -> None:
    """Integers declared categorical: Evidently keys by value, we key by their text."""
    rng = _rng(51)
    ref = rng.integers(0, 40, 3_000)
    cur = rng.integers(5, 45, 2_000)
    theirs = psi_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1).drift_score
    ours = compare_evidently(ref.astype(str), cur.astype(str), "categorical", 0, 0).psi
    assert_same(ours, theirs, "int-as-categorical PSI")


def test_psi_differs_between_categorical_and_numeric_treatment() -> None:
    """Guard against a vacuous comparison: the kind really changes the binning."""
    case = CASES["normal_shift"]()
    numeric = psi_stat_test(pd.Series(case.reference), pd.Series(case.current), ColumnType.Numerical, 0.1).drift_score
    categorical = psi_stat_test(
        pd.Series(case.reference), pd.Series(case.current), ColumnType.Categorical, 0.1
    ).drift_score
    assert abs(numeric - categorical) > 0.5
    assert_same(psi_evidently(case.reference, case.current, numeric=False), categorical, "float as categorical")


# ------------------------------------------------------------- (b) end to end


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = _rng(100)
    n, m = 4_000, 2_500

    def both(f: Callable[[int, bool], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return f(n, False), f(m, True)

    columns = {
        "normal": both(lambda k, c: _with_missing(rng.normal(0.3 if c else 0.0, 1, k), rng, 0.06)),
        "lognormal": both(lambda k, c: rng.lognormal(0, 1.4 if c else 1.0, k)),
        "uniform": both(lambda k, c: rng.uniform(-1, 1, k)),
        "small_int": both(lambda k, c: rng.choice(6, k, p=[0.1] * 5 + [0.5] if c else [1 / 6] * 6)),
        "int20": both(lambda k, c: rng.integers(0, 20, k)),
        "int21": both(lambda k, c: rng.integers(0, 21, k)),
        "city": both(
            lambda k, c: _categories(
                rng,
                ["Berlin", "Paris", "Rome", "Oslo"] if c else ["Berlin", "Paris", "Rome", "Madrid"],
                [0.4, 0.3, 0.2, 0.1],
                k,
                missing=0.04,
            )
        ),
        "code": both(lambda k, c: rng.integers(3 if c else 0, 33, k)),  # ints declared categorical
    }
    ref = pd.DataFrame({name: pair[0] for name, pair in columns.items()})
    cur = pd.DataFrame({name: pair[1] for name, pair in columns.items()})
    return ref, cur


NUMERIC_COLUMNS = ["normal", "lognormal", "uniform", "small_int", "int20", "int21"]
CATEGORICAL_COLUMNS = ["city", "code"]


def _values_by_column(snapshot) -> dict[tuple[str, str], float]:
    """``(column, method) → value`` of every ValueDrift in a snapshot."""
    out: dict[tuple[str, str], float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            out[(config["column"], config["method"])] = float(metric["value"])
    return out


def test_run_drift_matches_evidently_report(tmp_path) -> None:
    ref, cur = _frames()
    assert np.isinf(ref["normal"]).any() and ref["normal"].isna().any() and ref["city"].isna().any()
    definition = DataDefinition(numerical_columns=NUMERIC_COLUMNS, categorical_columns=CATEGORICAL_COLUMNS)
    ev_cur = Dataset.from_pandas(cur, data_definition=definition)
    ev_ref = Dataset.from_pandas(ref, data_definition=definition)

    preset = _values_by_column(Report([DataDriftPreset(method="psi")]).run(ev_cur, ev_ref))
    ks = _values_by_column(Report([ValueDrift(column=c, method="ks") for c in NUMERIC_COLUMNS]).run(ev_cur, ev_ref))
    assert set(preset) == {(c, "psi") for c in NUMERIC_COLUMNS + CATEGORICAL_COLUMNS}
    assert set(ks) == {(c, "ks") for c in NUMERIC_COLUMNS}

    ref_path, cur_path = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    ref.to_parquet(ref_path, index=False)
    cur.to_parquet(cur_path, index=False)
    report = run_drift(ref_path, cur_path, binning="evidently", categorical=["code"])
    assert set(report.features) == set(NUMERIC_COLUMNS + CATEGORICAL_COLUMNS)

    for column in NUMERIC_COLUMNS:
        result = report.features[column]
        assert result.kind == "numeric"
        assert_same(result.psi, preset[(column, "psi")], f"{column}: PSI vs DataDriftPreset")
        assert result.ks_pvalue is not None
        assert_same(result.ks_pvalue, ks[(column, "ks")], f"{column}: KS p-value vs ValueDrift")
    for column in CATEGORICAL_COLUMNS:
        result = report.features[column]
        assert result.kind == "categorical"
        assert_same(result.psi, preset[(column, "psi")], f"{column}: categorical PSI vs DataDriftPreset")

    # Evidently dropped NaN/±inf and None; so did we, and we count them as missing.
    normal = report.features["normal"]
    assert normal.reference_count == int(np.isfinite(ref["normal"]).sum())
    assert normal.reference_missing_ratio == pytest.approx(1 - normal.reference_count / len(ref))
    assert report.features["city"].current_count == int(cur["city"].notna().sum())


# ------------------------------------------------------------- known divergence


def test_integer_column_with_wide_sturges_matches_evidently(tmp_path) -> None:
    rng = _rng(200)
    ref = pd.DataFrame({"k": rng.integers(0, 21, 300_000)})
    cur = pd.DataFrame({"k": rng.integers(0, 21, 300_000)})
    theirs = psi_stat_test(ref["k"], cur["k"], ColumnType.Numerical, 0.1).drift_score
    definition = DataDefinition(numerical_columns=["k"])
    snapshot = Report([ValueDrift(column="k", method="psi")]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    assert _values_by_column(snapshot)[("k", "psi")] == pytest.approx(theirs, abs=TOL)
    ref.to_parquet(tmp_path / "r.parquet", index=False)
    cur.to_parquet(tmp_path / "c.parquet", index=False)
    offline = run_drift(tmp_path / "r.parquet", tmp_path / "c.parquet", binning="evidently").features["k"].psi
    direct = psi_evidently(ref["k"].to_numpy(), cur["k"].to_numpy(), numeric=True)
    assert abs(direct - theirs) <= TOL and abs(offline - theirs) <= TOL, (
        f"Evidently {theirs!r}, psi_evidently {direct!r}, run_drift {offline!r}"
    )
