"""Version against version: each configured version's predictions against its baseline's.

A canary and its stable version are two configured versions of one model, each with its own
profile. Which version a version is compared with (its *baseline*) comes from the config:
``models[].baseline_version`` where set; for a model none of whose entries sets one and that
has exactly two configured versions, the one listed second (the canary) is compared with the
one listed first (the stable version); otherwise none. A comparison has a direction: gates ask
whether the candidate is worse than its baseline, so the stable version gets no baseline.

The comparison runs after every model of an evaluation pass is evaluated, on the windows'
prediction summaries (:func:`detectors.version_comparison.compare_versions`, which says how
versions with different profile bins are put on one axis). Both versions of a model are always
in the same pass: single mode owns every model, and in scale-out the summaries are routed by
model name, so one stage-2 replica owns all versions of a model.

A window where either version has no predictions, or whose summaries cannot be aligned (class
predictions over categories the candidate lumps into ``__other__``), has no comparison: its
series are absent rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from detectors.decision import DriftRule
from detectors.version_comparison import IncomparableVersions, compare_versions
from exporter.config import ModelConfig
from exporter.pipeline.model_versions import ModelKey, versions_by_model
from exporter.pipeline.snapshot import ModelSnapshot, WindowResult

log = logging.getLogger(__name__)


def baseline_versions(models: Mapping[ModelKey, ModelConfig]) -> dict[ModelKey, str]:
    """The baseline version of each configured version that has one.

    >>> from pathlib import Path
    >>> def m(name, version, baseline=None):
    ...     return (name, version), ModelConfig(name=name, version=version, reference=Path("p"), baseline_version=baseline)
    >>> baseline_versions(dict([m("fraud", "7"), m("fraud", "8")]))
    {('fraud', '8'): '7'}
    >>> baseline_versions(dict([m("churn", "1"), m("churn", "2", "1"), m("churn", "3", "1"), m("solo", "1")]))
    {('churn', '2'): '1', ('churn', '3'): '1'}
    """
    explicit = {key: config.baseline_version for key, config in models.items() if config.baseline_version}
    configured = {name for name, _ in explicit}
    out: dict[ModelKey, str] = {}
    for name, versions in versions_by_model(models).items():
        if name in configured:
            out.update({(name, v): explicit[(name, v)] for v in versions if (name, v) in explicit})
        elif len(versions) == 2:
            stable, canary = versions
            out[(name, canary)] = stable
    return out


def with_version_comparisons(
    results: Sequence[ModelSnapshot],
    baselines: Mapping[ModelKey, str],
    rule_for: Callable[[ModelKey], DriftRule],
    epsilon_for: Callable[[ModelKey], float],
) -> list[ModelSnapshot]:
    """``results`` with each version's windows compared with its baseline's same windows.

    ``rule_for`` gives the decision rule of the compared (candidate) version, ``epsilon_for``
    its profile's PSI epsilon.
    """
    by_key = {(r.model, r.model_version): r for r in results}
    out = []
    for result in results:
        key = (result.model, result.model_version)
        version = baselines.get(key)
        baseline = by_key.get((result.model, version)) if version is not None else None
        if baseline is None:
            out.append(result)
            continue
        windows = {
            name: _compared(window, baseline.windows.get(name), rule_for(key), epsilon_for(key), key, name)
            for name, window in result.windows.items()
        }
        out.append(replace(result, windows=windows, baseline_version=baseline.model_version))
    return out


def _compared(
    window: WindowResult,
    baseline: WindowResult | None,
    rule: DriftRule,
    epsilon: float,
    key: ModelKey,
    name: str,
) -> WindowResult:
    mine = window.prediction_summary
    theirs = baseline.prediction_summary if baseline is not None else None
    if mine is None or theirs is None or mine.count == 0 or theirs.count == 0:
        return window
    try:
        comparison = compare_versions(theirs, mine, rule, epsilon)
    except IncomparableVersions as exc:
        log.debug("model %s version %s, window %s: no version comparison: %s", key[0], key[1], name, exc)
        return window
    return replace(window, versus_baseline=comparison)
