"""One rule for the aggregator and the offline ``drift`` command: a replayed window gets the same flags.

The aggregator folds a window's records into buckets and judges its features together
(``evaluate_model``); ``model-health drift`` reads the same records from a file and judges
them against the saved profile. Both go through ``detectors.compare`` and
``detectors.familywise.apply_family``, so every verdict, p-value and the family's level agree.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from detectors.decision import DriftRule
from detectors.profile import build_profile
from exporter.cli import main
from exporter.config import Thresholds
from exporter.demo.synthetic import drifted_columns, prediction_log, synthetic_table
from exporter.offline.drift import run_drift
from exporter.pipeline.evaluation import ModelIdentity, evaluate_model
from exporter.pipeline.windows import ModelWindows, WindowSpec
from exporter.profiles import save_profile

SHAPE = {"numeric": 40, "categorical": 10, "drifted": 3}
WINDOW = WindowSpec("1h", 60, 60)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    profile = build_profile(
        synthetic_table(20_000, seed=1, **SHAPE),
        model="m",
        model_version="1",
        created_at=0.0,
        prediction="prediction",
        label="label",
    )
    profile_path = save_profile(profile, root / "m-1.parquet")
    # A low-traffic hour: 700 records, three features drifting.
    window = synthetic_table(700, seed=9, drift=True, **SHAPE)
    current_path = root / "window.parquet"
    pq.write_table(window, current_path)
    return profile, profile_path, window, current_path


@pytest.mark.parametrize("alpha_model", [0.01, 0.2])
def test_the_offline_command_replays_the_aggregators_verdicts(files, alpha_model):
    profile, profile_path, window, current_path = files
    store = ModelWindows(profile, [WINDOW], allowed_lateness=3_600)
    store.fold_predictions(prediction_log(window, "m", "1", np.linspace(1_000, 4_500, window.num_rows)))
    thresholds = Thresholds(alpha_model=alpha_model)
    live = evaluate_model(ModelIdentity("m", "1"), store, thresholds.rule, now=4_560).windows["1h"]
    replay = run_drift(profile_path, current_path, rule=thresholds.rule())

    assert live.samples == replay.current_rows == 700
    assert replay.family is not None and live.alpha_effective == replay.family.alpha_effective
    assert replay.family.tested == len(profile.features)  # every feature has 500+ values
    assert set(live.features) == set(replay.features)
    for name, result in live.features.items():
        offline = replay.features[name]
        assert (result.drift, result.fired) == (offline.drift, offline.fired), name
        assert result.method_pvalues == offline.method_pvalues and result.drift_pvalue == offline.drift_pvalue, name
    assert set(replay.drifted) <= set(drifted_columns(**SHAPE))


def test_drift_json_carries_the_family_and_the_option_sets_it(files, capsys):
    profile, profile_path, _, current_path = files
    outputs = {}
    for alpha_model in ("0.01", "0.2"):
        with pytest.raises(SystemExit) as exited:
            main(["drift", "--reference", str(profile_path), "--current", str(current_path), "--format", "json",
                  "--alpha-model", alpha_model])  # fmt: skip
            raise SystemExit(0)
        assert not exited.value.code
        outputs[alpha_model] = json.loads(capsys.readouterr().out)
    tested = len(profile.features)
    for alpha_model, out in outputs.items():
        assert out["alpha_model"] == float(alpha_model) and out["features_tested"] == tested
        assert out["alpha_effective"] == pytest.approx(float(alpha_model) / tested)
        for feature in out["features"].values():
            assert 0 <= feature["drift_pvalue"] <= 1
            flagged = any(
                p <= out["alpha_effective"] / len(feature["method_pvalues"]) for p in feature["method_pvalues"].values()
            )
            assert feature["drift"] == flagged
    # A looser family level flags at least what the strict one does.
    strict = {n for n, f in outputs["0.01"]["features"].items() if f["drift"]}
    loose = {n for n, f in outputs["0.2"]["features"].items() if f["drift"]}
    assert strict <= loose


def test_the_bad_option_is_refused(files, capsys):
    _, profile_path, _, current_path = files
    with pytest.raises(SystemExit) as exited:
        main(["drift", "--reference", str(profile_path), "--current", str(current_path), "--alpha-model", "1.5"])
    assert exited.value.code == 2
    assert "--alpha-model" in capsys.readouterr().err


def test_the_rule_carries_the_configured_family_level():
    assert Thresholds().rule().alpha_model == DriftRule().alpha_model == 0.01
    thresholds = Thresholds(alpha_model=0.05, features={"x": {"alpha": 0.001}})
    assert thresholds.rule("x").alpha_model == 0.05 and thresholds.rule("x").alpha == 0.001
