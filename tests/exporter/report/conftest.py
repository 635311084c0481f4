"""Data sets for the drift report: synthetic drift plus hostile names and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.demo.synthetic import drifted_columns, synthetic_table

HOSTILE = "<script>alert(1)</script>"
SHAPE = {"numeric": 6, "categorical": 3, "drifted": 3}
DRIFTED = set(drifted_columns(**SHAPE)) | {"cat_0"}


def hostile_pair(rows: int, **shape: int) -> tuple[pa.Table, pa.Table]:
    """A reference and a drifted current table; the current's ``cat_0`` has a hostile value
    the reference never had, and a numeric column is named as a script."""
    reference = synthetic_table(rows, seed=11, **shape)
    current = synthetic_table(rows, seed=12, drift=True, **shape)
    values = current.column("cat_0").to_pylist()
    values = [HOSTILE if i % 8 == 0 else v for i, v in enumerate(values)]
    current = current.set_column(current.column_names.index("cat_0"), "cat_0", pa.array(values, pa.string()))
    rng = np.random.default_rng(5)
    reference = reference.append_column(HOSTILE, pa.array(rng.normal(0, 1, rows)))
    current = current.append_column(HOSTILE, pa.array(rng.normal(0, 1, rows)))
    return reference, current


@pytest.fixture(scope="session")
def report_files(tmp_path_factory) -> dict[str, Path]:
    """Parquet files: ``reference``, ``current`` and a ``profile`` built from the reference."""
    from exporter.cli import main

    root = tmp_path_factory.mktemp("report")
    reference, current = hostile_pair(4_000, **SHAPE)
    paths = {"reference": root / "reference.parquet", "current": root / "current.parquet"}
    pq.write_table(reference, paths["reference"])
    pq.write_table(current, paths["current"])
    paths["profile"] = root / "profile.parquet"
    args = ["reference", "build", str(paths["reference"]), "--model", "fraud", "--model-version", "7"]
    args += ["--prediction", "prediction", "--label", "label", "--out", str(paths["profile"])]
    with pytest.raises(SystemExit) as exited:
        main(args)
        raise SystemExit(0)
    assert exited.value.code == 0
    return paths
