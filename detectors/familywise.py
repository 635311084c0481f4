"""Family-wise control: a model's features tested together, at ``alpha_model`` for the model.

One column on its own is flagged at level ``alpha`` (:mod:`detectors.decision`). A model
with ``N`` features tested that way flags *some* feature of a stationary window with a
chance of up to ``N · alpha``: at 100 features and a few hundred rows, about one window in
eight. The model's alert fires on any flagged feature, so that chance is what pages.

Bonferroni over the model's features: each feature is tested at

    level = min(alpha, alpha_model / N)

where ``N`` counts the features that *could* flag in this window — those with at least
``min_samples`` present values (a feature below it flags at no level, whatever its data, so
it spends none of the budget). Split over a feature's methods as before, the levels of all
tests add up to at most ``alpha_model``, so by the union bound

    P(a stationary model flags any feature in one evaluation) ≤ alpha_model

for any ``N``, any window sizes and any dependence between the features (correlated
features are the rule, not the exception). Why not Holm, or a false-discovery rate:

* Holm rejects at least what Bonferroni does, with the same guarantee, but only gains once
  some feature has already been flagged — when the model's alert fires anyway — and it makes
  one feature's verdict depend on every other feature's p-value. Here a feature's verdict
  depends on its own data and ``N`` alone, so a user replaying a window sees the same flags.
* A false-discovery rate bounds the share of false flags among the flags; on a stationary
  model every flag is false, and what pages is the chance of one.

With ``N = 1`` the level is ``min(alpha, alpha_model)``: the one-column rule. The level
never rises with ``N``, and each method's verdict at a level is its gated p-value at most
that level, so a feature flagged with ``N + 1`` features is flagged with ``N``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from detectors.compare import ColumnDrift
from detectors.decision import DriftRule, fired_at

RuleFor = Callable[[str], DriftRule]  # feature name → its rule


@dataclass(frozen=True)
class FamilyLevel:
    """The family-wise test of one model's window."""

    alpha_model: float  # the chance that a stationary model flags any feature in one evaluation
    tested: int  # features with at least min_samples present values: the ones that could flag

    @property
    def alpha_effective(self) -> float:
        """The per-feature level: ``alpha_model / tested`` (``alpha_model`` with none tested).

        >>> FamilyLevel(0.01, 100).alpha_effective
        0.0001
        """
        return self.alpha_model / max(self.tested, 1)

    def level(self, rule: DriftRule) -> float:
        """A feature's level: the family's, or its own ``alpha`` where that is smaller.

        >>> FamilyLevel(0.01, 1).level(DriftRule()), FamilyLevel(0.01, 4).level(DriftRule(alpha=0.001))
        (0.01, 0.001)
        """
        return min(rule.alpha, self.alpha_effective)


def family_level(results: Mapping[str, ColumnDrift], rule_for: RuleFor, alpha_model: float) -> FamilyLevel:
    """The family of ``results``: the features whose window holds at least their ``min_samples``."""
    tested = sum(1 for name, result in results.items() if result.current_count >= rule_for(name).min_samples)
    return FamilyLevel(alpha_model, tested)


def apply_family(
    results: Mapping[str, ColumnDrift], rule_for: RuleFor, alpha_model: float | None = None
) -> tuple[dict[str, ColumnDrift], FamilyLevel]:
    """Every feature's verdict at the model's family-wise level, and that level.

    ``results`` are one window's columns compared on their own (:func:`detectors.compare.compare`
    or its offline variants, each with its feature's rule); only ``drift`` and ``fired``
    change. ``alpha_model`` defaults to the model's rule (``rule_for("")``).
    """
    family = family_level(results, rule_for, rule_for("").alpha_model if alpha_model is None else alpha_model)
    out: dict[str, ColumnDrift] = {}
    for name, result in results.items():
        if not result.method_pvalues:  # built without the rule's p-values: its verdict stands
            out[name] = result
            continue
        fired = fired_at(result.method_pvalues, family.level(rule_for(name)))
        out[name] = result if fired == result.fired else replace(result, drift=bool(fired), fired=fired)
    return out, family
