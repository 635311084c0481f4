"""Which configured model version a record belongs to: one rule for every mode.

Records name a model and, usually, a version. The single-process aggregator and
scale-out's fold (stage 1, and stage 2 for what it pairs) must map them to the same
configured ``(model, version)``, or the two modes would count differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ModelKey = tuple[str, str]  # (model, model_version)


def versions_by_model(keys: Iterable[ModelKey]) -> dict[str, list[str]]:
    """The configured versions of each model, in configuration order."""
    versions: dict[str, list[str]] = {}
    for name, version in keys:
        versions.setdefault(name, []).append(version)
    return versions


def resolve_model(versions: Mapping[str, list[str]], model: str, version: str | None) -> ModelKey | None:
    """The configured key a record names, or None when it names none.

    A record without a version belongs to its model's only configured version; with
    several configured, it is ambiguous and names none.

    >>> versions = versions_by_model([("fraud", "7"), ("churn", "1"), ("churn", "2")])
    >>> resolve_model(versions, "fraud", None), resolve_model(versions, "churn", None)
    (('fraud', '7'), None)
    >>> resolve_model(versions, "churn", "2"), resolve_model(versions, "churn", "3")
    (('churn', '2'), None)
    """
    known = versions.get(model)
    if not known:
        return None
    if version is None:
        return (model, known[0]) if len(known) == 1 else None
    return (model, version) if version in known else None
