"""Validating custom resources against the vendored upstream CRDs (tests/fixtures/crds/).

``validate(obj)`` finds the CRD of ``obj``'s ``apiVersion`` and ``kind``, checks it against the
served version's ``openAPIV3Schema`` with jsonschema, and then, as the API server's strict field
validation (``kubectl apply --validate=strict``) does, refuses every field the schema does not
declare — the API server would otherwise drop such a field silently, and a typo in a gate
would simply never be applied.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "crds"


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema, for every served version of every vendored CRD."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of fields ``schema`` does not declare (structural-schema pruning rules)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{path}.{key}")
            elif properties is not None and not extra and path != ".metadata":
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")


def validate(obj: dict[str, Any]) -> None:
    """AssertionError naming the problem unless ``obj`` is valid for its CRD."""
    key = (obj["apiVersion"], obj["kind"])
    schema = schemas().get(key)
    assert schema is not None, f"no vendored CRD serves {key}; have {sorted(schemas())}"
    try:
        jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)
    except jsonschema.ValidationError as exc:
        raise AssertionError(
            f"{key} {obj['metadata'].get('name')}: {exc.message} at {list(exc.absolute_path)}"
        ) from None
    unknown = list(unknown_fields(obj, schema))
    assert not unknown, f"{key} {obj['metadata'].get('name')}: fields the CRD does not declare: {unknown}"
