"""What every generated object shares: its metadata."""

from __future__ import annotations

from typing import Any

PART_OF = "model-health-exporter"


def metadata(name: str, namespace: str | None, component: str) -> dict[str, Any]:
    """``metadata`` with the project's labels; no namespace means ``kubectl -n`` decides."""
    out: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": component},
    }
    if namespace:
        out["namespace"] = namespace
    return out
