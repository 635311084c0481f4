"""The live demo, headless and shortened: broker, traffic, aggregator, and drift reached."""

import json

import pytest

from exporter.cli import cli
from click.testing import CliRunner


@pytest.mark.slow
def test_headless_demo_reaches_drift_on_exactly_the_drifted_features(tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        ["demo", "--headless", "--drift-after", "8", "--window-seconds", "10", "--rate", "400",
         "--until-drift", "--duration", "120", "--port", "0", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["reached_drift"] is True
    assert summary["drifted"] == summary["expected_drifted"] == ["cat_0", "num_00", "num_01"]
    assert summary["predictions"] > 0 and summary["labels_joined"] > 0
    assert (tmp_path / "demo.log").exists()
