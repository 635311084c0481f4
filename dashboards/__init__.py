"""Grafana dashboards as code (grafanalib), pure functions of the metric catalogue and config.

- ``render_all(config)`` — dashboard key → dashboard JSON (as a dict), for ``fleet``, ``model``,
  ``gpu`` and ``pipeline``;
- ``panel_queries(dashboard)`` — the PromQL of every panel target;
- ``variable_queries(dashboard)`` — the PromQL selectors inside the ``label_values`` variables;
- ``fill_variables(expr, values)`` — a panel query with the dashboard variables filled in;
- ``render_files(config)`` / ``write_files(out, config)`` — ``<key>.json`` each, as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dashboards import fleet, gpu, model, pipeline
from exporter.config import DashboardsConfig
from exporter.generated import write_rendered

BUILDERS = {"fleet": fleet.build, "model": model.build, "gpu": gpu.build, "pipeline": pipeline.build}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def render_all(config: DashboardsConfig | None = None) -> dict[str, dict[str, Any]]:
    """Every dashboard, by key."""
    config = config or DashboardsConfig()
    return {key: build(config) for key, build in BUILDERS.items()}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def panel_queries(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL ``expr`` of every target of every panel (rows' nested panels included)."""
    return [
        target["expr"]
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    """The series selectors of the ``label_values(selector, label)`` query variables."""
    out = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            match = _LABEL_VALUES.match(query)
            if match is None:
                raise ValueError(f"variable {variable.get('name')!r}: not label_values(selector, label): {query!r}")
            out.append(match.group("selector"))
    return out


# Values that turn a panel's query into plain PromQL: every model, window, instance and GPU.
DEFAULT_VARIABLES: dict[str, str] = {
    "__rate_interval": "1m",
    "model": ".+",
    "model_version": ".+",
    "window": ".+",
    "instance": ".+",
    "gpu_uuid": ".+",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def fill_variables(expr: str, values: dict[str, str] | None = None) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` replaced (``values`` over the defaults).

    Exact matchers (``model="$model"``) need a concrete value, not a regex, to select anything:
    pass ``{"model": "fraud", "model_version": "7"}`` to look at one model.

    >>> fill_variables('rate(x{model="$model"}[$__rate_interval])', {"model": "fraud"})
    'rate(x{model="fraud"}[1m])'
    """
    merged = {**DEFAULT_VARIABLES, **(values or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in merged:
            raise KeyError(f"no value for dashboard variable ${name} in {expr!r}")
        return merged[name]

    return _VARIABLE.sub(replace, expr)


def render_files(config: DashboardsConfig | None = None) -> dict[str, str]:
    """File name → JSON text (sorted keys, two-space indent) of every dashboard."""
    return {
        f"{key}.json": json.dumps(board, indent=2, sort_keys=True) + "\n" for key, board in render_all(config).items()
    }


def write_files(out: Path, config: DashboardsConfig | None = None) -> list[Path]:
    """Write every dashboard as ``<key>.json`` into ``out``."""
    return write_rendered(out, render_files(config))
