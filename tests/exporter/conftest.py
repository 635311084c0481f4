from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from exporter.demo.synthetic import synthetic_table


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """A reference and a drifted current set (8 numeric + 3 categorical, drift in 3)."""
    root = tmp_path_factory.mktemp("data")
    shape = {"numeric": 8, "categorical": 3, "drifted": 3}
    paths = {
        "reference": root / "reference.parquet",
        "current": root / "current.parquet",
        "same": root / "same.parquet",
    }
    pq.write_table(synthetic_table(6_000, seed=1, **shape), paths["reference"])
    pq.write_table(synthetic_table(6_000, seed=2, drift=True, **shape), paths["current"])
    pq.write_table(synthetic_table(6_000, seed=3, **shape), paths["same"])
    return paths
