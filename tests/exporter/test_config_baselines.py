"""``models[].baseline_version`` and ``models[].performance_estimation``: loading and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.performance_estimation import DropRule
from exporter.config import AggregatorConfig, load_config
from exporter.errors import UserError
from exporter.pipeline.versions import baseline_versions


def _load(tmp_path: Path, models: str) -> AggregatorConfig:
    path = tmp_path / "aggregator.yaml"
    path.write_text(f"models:\n{models}")
    return load_config(path, AggregatorConfig, environ={})


def _baselines(config: AggregatorConfig) -> dict[tuple[str, str], str]:
    return baseline_versions({(m.name, m.version): m for m in config.models})


def test_two_versions_compare_the_second_with_the_first(tmp_path):
    config = _load(
        tmp_path,
        '  - {name: fraud, version: "7", reference: p.parquet}\n  - {name: fraud, version: "8", reference: p.parquet}\n',
    )
    assert _baselines(config) == {("fraud", "8"): "7"}


def test_an_explicit_baseline_wins_and_others_get_none(tmp_path):
    config = _load(
        tmp_path,
        '  - {name: fraud, version: "9", reference: p.parquet, baseline_version: "7"}\n'
        '  - {name: fraud, version: "7", reference: p.parquet}\n'
        '  - {name: fraud, version: "8", reference: p.parquet}\n',
    )
    assert _baselines(config) == {("fraud", "9"): "7"}


def test_one_or_three_versions_without_a_setting_compare_nothing(tmp_path):
    config = _load(
        tmp_path,
        '  - {name: a, version: "1", reference: p.parquet}\n'
        + "".join(f'  - {{name: b, version: "{v}", reference: p.parquet}}\n' for v in "123"),
    )
    assert _baselines(config) == {}


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        (
            '"6"',
            r"models\[1\]\.baseline_version: 'fraud' has no configured version '6' \(other configured versions: 7\)",
        ),
        ('"8"', r"models\[1\]\.baseline_version: a version cannot be its own baseline"),
    ],
)
def test_a_baseline_that_is_not_another_configured_version_fails_at_start(tmp_path, baseline, message):
    with pytest.raises(UserError, match=message):
        _load(
            tmp_path,
            '  - {name: fraud, version: "7", reference: p.parquet}\n'
            f'  - {{name: fraud, version: "8", reference: p.parquet, baseline_version: {baseline}}}\n',
        )


def test_the_drop_rule_is_configurable_per_model(tmp_path):
    config = _load(
        tmp_path,
        '  - {name: fraud, version: "7", reference: p.parquet, performance_estimation: {k: 4, min_drop: 0.01}}\n',
    )
    assert config.models[0].performance_estimation.rule() == DropRule(k=4, min_drop=0.01, min_samples=500)
    with pytest.raises(UserError, match=r"models\.0\.performance_estimation\.k|models\[0\]\.performance_estimation\.k"):
        _load(tmp_path, '  - {name: fraud, version: "7", reference: p.parquet, performance_estimation: {k: 0}}\n')
