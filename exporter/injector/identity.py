"""Which model a pod serves, read from its metadata.

The first source that names the model wins, in this order:

1. ``model-health.io/model`` (annotation, else label) — always, when present;
2. KServe: ``serving.kserve.io/inferenceservice`` = the InferenceService name;
3. Seldon Core v1: ``seldon-deployment-id`` = the SeldonDeployment name;
4. ``app.kubernetes.io/name``, then the older ``app`` label.

Seldon Core v2 server pods (``seldon-server-name``) host many models at once and write
Kafka themselves, so they need an explicit ``model-health.io/model`` to be injected.

The version comes from ``model-health.io/model-version`` (annotation, else label), then
``app.kubernetes.io/version``, then ``version``; without one it is ``unknown`` and the
admission response says so, because the aggregator matches records to a reference
profile by (model, version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.injector import names

UNKNOWN_VERSION = "unknown"


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    source: str  # which rule named the model: annotation, kserve, seldon, app-label
    version_known: bool


class NoModelName(ValueError):
    """The pod's metadata names no model; the message says what to set."""


def _first(sources: list[tuple[Mapping[str, str], str]]) -> str | None:
    for mapping, key in sources:
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def model_identity(labels: Mapping[str, str], annotations: Mapping[str, str]) -> ModelIdentity:
    """The model and version ``labels``/``annotations`` describe; ``NoModelName`` if none."""
    name_rules: list[tuple[str, list[tuple[Mapping[str, str], str]]]] = [
        ("annotation", [(annotations, names.MODEL), (labels, names.MODEL)]),
        ("kserve", [(labels, names.KSERVE_ISVC)]),
        ("seldon", [(labels, names.SELDON_DEPLOYMENT)]),
        ("app-label", [(labels, names.APP_NAME), (labels, "app")]),
    ]
    name = source = None
    for rule, sources in name_rules:
        if rule == "app-label" and names.SELDON_V2_SERVER in labels:
            break  # a Seldon v2 server's app label names the server, not a model
        name = _first(sources)
        if name is not None:
            source = rule
            break
    if name is None or source is None:
        if names.SELDON_V2_SERVER in labels:
            raise NoModelName(
                "Seldon Core v2 server pods host several models; set "
                f"{names.MODEL} to monitor one (the aggregator reads Seldon v2's Kafka topics directly)"
            )
        raise NoModelName(f"no model name found; set the {names.MODEL} annotation")
    version = _first(
        [
            (annotations, names.MODEL_VERSION),
            (labels, names.MODEL_VERSION),
            (labels, names.APP_VERSION),
            (labels, "version"),
        ]
    )
    return ModelIdentity(name, version or UNKNOWN_VERSION, source, version is not None)
