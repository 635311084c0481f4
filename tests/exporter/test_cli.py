"""The command line as a user meets it: real files, real exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.cli import EXIT_DRIFT, main
from exporter.demo.synthetic import drifted_columns

DRIFTED = set(drifted_columns(8, 3, 3))


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.fixture(scope="module")
def profile(datasets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("profile") / "fraud-7.parquet"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "reference",
                "build",
                str(datasets["reference"]),
                "--model",
                "fraud",
                "--model-version",
                "7",
                "--prediction",
                "prediction",
                "--label",
                "label",
                "--trained-at",
                "2026-11-01T12:00:00Z",
                "--out",
                str(out),
            ]
        )
        raise SystemExit(0)
    assert exited.value.code == 0
    return out


def test_reference_build_writes_a_profile(profile):
    from exporter.profiles import load_profile

    loaded = load_profile(profile)
    assert loaded.metadata.trained_at == 1793534400.0
    assert loaded.metadata.features == tuple(f"num_{i:02d}" for i in range(8)) + ("cat_0", "cat_1", "cat_2")


@pytest.mark.parametrize("reference_key", ["profile", "data"])
def test_drift_json_has_the_documented_shape(reference_key, profile, datasets, capsys):
    reference = profile if reference_key == "profile" else datasets["reference"]
    code, out, _ = run(
        [
            "drift",
            "--reference",
            str(reference),
            "--current",
            str(datasets["current"]),
            "--format",
            "json",
            "--features",
            ",".join(f"num_{i:02d}" for i in range(8)),
            "--features",
            "cat_0,cat_1,cat_2",
        ],
        capsys,
    )
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == {"reference": 6000, "current": 6000}
    assert {n for n, f in report["features"].items() if f["drift"]} == DRIFTED
    numeric, categorical = report["features"]["num_00"], report["features"]["cat_0"]
    assert numeric["kind"] == "numeric" and {"psi", "ks_statistic", "ks_pvalue", "drift"} <= numeric.keys()
    assert categorical["kind"] == "categorical" and {"psi", "chi2_pvalue", "js_distance", "drift"} <= categorical.keys()
    assert "ks_statistic" not in categorical and "js_distance" not in numeric
    if reference_key == "profile":
        assert 0 < numeric["ks_error_bound"] <= 0.0011  # streaming KS states its bound


def test_drift_leaves_the_collector_and_the_environment_as_it_found_them(profile, datasets, capsys):
    import gc
    import os

    environment = dict(os.environ)
    code, _, _ = run(["drift", "--reference", str(profile), "--current", str(datasets["current"])], capsys)
    assert code == 0 and gc.isenabled() and dict(os.environ) == environment


def test_drift_table_highlights_drifted_rows(profile, datasets, capsys):
    code, out, _ = run(["drift", "--reference", str(profile), "--current", str(datasets["current"])], capsys)
    assert code == 0
    assert "3 of 11 features" in out
    drift_lines = [line for line in out.splitlines() if "DRIFT" in line]
    assert {line.split()[1] for line in drift_lines} == DRIFTED


def test_fail_on_drift_sets_the_exit_status(profile, datasets, capsys):
    assert (
        run(["drift", "--reference", str(profile), "--current", str(datasets["current"]), "--fail-on-drift"], capsys)[0]
        == EXIT_DRIFT
    )
    assert (
        run(["drift", "--reference", str(profile), "--current", str(datasets["same"]), "--fail-on-drift"], capsys)[0]
        == 0
    )


def test_evidently_binning_on_csv(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    (tmp_path / "ref.csv").write_text(
        "x,c\n" + "".join(f"{v},{'ab'[i % 2]}\n" for i, v in enumerate(rng.normal(size=800)))
    )
    (tmp_path / "cur.csv").write_text("x,c\n" + "".join(f"{v},a\n" for v in rng.normal(1, 1, 800)))
    code, out, _ = run(
        [
            "drift",
            "--reference",
            str(tmp_path / "ref.csv"),
            "--current",
            str(tmp_path / "cur.csv"),
            "--binning",
            "evidently",
            "--format",
            "json",
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0 and report["binning"] == "evidently"
    assert report["features"]["x"]["drift"] and report["features"]["c"]["drift"]


def test_nan_and_inf_count_as_missing_and_are_reported(tmp_path, capsys):
    pq.write_table(pa.table({"x": [float(i % 50) for i in range(1000)]}), tmp_path / "ref.parquet")
    values = [float(i % 50) for i in range(900)] + [float("nan")] * 50 + [float("inf")] * 25 + [float("-inf")] * 25
    pq.write_table(pa.table({"x": values}), tmp_path / "cur.parquet")
    code, out, _ = run(
        [
            "drift",
            "--reference",
            str(tmp_path / "ref.parquet"),
            "--current",
            str(tmp_path / "cur.parquet"),
            "--format",
            "json",
        ],
        capsys,
    )
    x = json.loads(out)["features"]["x"]
    assert code == 0 and x["current_missing_ratio"] == 0.1 and x["current_count"] == 900
    code, out, _ = run(
        ["drift", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet")], capsys
    )
    assert "0.0% → 10.0%" in out


def _bad_inputs(tmp: Path, profile: Path, good: Path) -> list[tuple[list[str], str]]:
    (tmp / "garbage.parquet").write_bytes(b"not parquet at all")
    (tmp / "broken.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    (tmp / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    (tmp / "empty.csv").write_text("x,c\n")
    (tmp / "words.csv").write_text("num_00\n1.5\n2.5\nabc\n")
    (tmp / "ref.csv").write_text("num_00\n1\n2\n3\n")
    table = pq.read_table(profile)
    meta = table.schema.metadata[b"model_health.profile"].decode().replace('"format_version": 1', '"format_version": 2')
    pq.write_table(
        table.replace_schema_metadata({**table.schema.metadata, b"model_health.profile": meta.encode()}),
        tmp / "old.parquet",
    )
    drift = lambda ref, cur, *more: ["drift", "--reference", str(ref), "--current", str(cur), *more]  # noqa: E731
    return [
        (drift(tmp / "missing.parquet", good), "missing.parquet: no such file"),
        (drift(good, tmp / "garbage.parquet"), "garbage.parquet: not a Parquet file"),
        (drift(good, tmp / "broken.parquet"), "broken.parquet: unreadable Parquet"),
        (drift(tmp / "ragged.csv", good), "ragged.csv: unreadable CSV"),
        (drift(good, tmp / "empty.csv"), "empty.csv: no rows"),
        (drift(good, good, "--features", "num_00,zzz"), "no column 'zzz'"),
        (drift(profile, tmp / "words.csv"), "no column 'num_01'"),
        (
            drift(profile, tmp / "words.csv", "--features", "num_00"),
            "column 'num_00' must be numeric, but row 3 holds 'abc'",
        ),
        (drift(tmp / "ref.csv", tmp / "words.csv"), "column 'num_00' must be numeric, but row 3 holds 'abc'"),
        (drift(profile, good, "--features", "nope"), "profile has no feature 'nope'"),
        (drift(tmp / "old.parquet", good), "profile format version 2 is not supported"),
        (drift(profile, good, "--binning", "evidently"), "needs the raw reference data"),
        (
            [
                "reference",
                "build",
                str(good),
                "--model",
                "m",
                "--model-version",
                "1",
                "--features",
                "ghost",
                "--out",
                str(tmp / "p.parquet"),
            ],
            "no column 'ghost'",
        ),
        (
            [
                "reference",
                "build",
                str(tmp / "empty.csv"),
                "--model",
                "m",
                "--model-version",
                "1",
                "--out",
                str(tmp / "p.parquet"),
            ],
            "no rows",
        ),
    ]


def test_bad_input_gets_one_clear_line_and_exit_2(tmp_path, profile, datasets, capsys):
    for args, message in _bad_inputs(tmp_path, profile, datasets["reference"]):
        code, out, err = run(args, capsys)
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        assert "Traceback" not in err and out == ""


def test_usage_errors_name_the_option(capsys, datasets, tmp_path):
    code, _, err = run(
        [
            "reference",
            "build",
            str(datasets["reference"]),
            "--model",
            "m",
            "--model-version",
            "1",
            "--trained-at",
            "yesterday",
            "--out",
            str(tmp_path / "p.parquet"),
        ],
        capsys,
    )
    assert code == 2 and "neither epoch seconds nor RFC 3339" in err
    code, _, err = run(["drift", "--current", "x"], capsys)
    assert code == 2 and "--reference" in err


def test_installed_console_script_never_prints_a_traceback(tmp_path):
    """The real entry point, as a separate process."""
    script = Path(sys.executable).with_name("model-health")
    result = subprocess.run(
        [str(script), "drift", "--reference", str(tmp_path / "nope.csv"), "--current", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.csv'}: no such file"]


def test_demo_runs_and_shows_the_injected_drift(tmp_path, capsys):
    code, out, _ = run(["demo", "--offline", "--rows", "5000", "--out", str(tmp_path)], capsys)
    assert code == 0
    drifted = {line.split()[1] for line in out.splitlines() if "DRIFT" in line}
    assert drifted == set(drifted_columns(8, 3, 3))
    assert (tmp_path / "profile.parquet").exists()
