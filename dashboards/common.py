"""Building blocks every dashboard shares: the datasource variable, panels, layout, the envelope.

Every panel and target reads the Prometheus datasource through the ``datasource`` variable,
which is the first variable of every dashboard. Layout is a list of rows of panels; each row
takes its height from its tallest panel and panels in a row share the 24 grid columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attr
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from exporter.config import DashboardsConfig

DATASOURCE_VARIABLE = "datasource"
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${%s}" % DATASOURCE_VARIABLE}
# Recent enough that Grafana applies no legacy migrations to these panels.
SCHEMA_VERSION = 39
RATE = "$__rate_interval"


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False, ref: str = "A") -> g.Target:
    """A Prometheus query of a panel."""
    return g.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        instant=instant,
        format="table" if table else "time_series",
        datasource=DATASOURCE,
        intervalFactor=1,
        step=None,
    )


def targets(*queries: tuple[str, str]) -> list[g.Target]:
    """Several ``(expr, legend)`` queries with refIds A, B, …"""
    return [target(expr, legend, ref=chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def _steps(thresholds: Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
    """``[("green", 0), ("red", 0.2)]`` → Grafana threshold steps; the first is the base (null)."""
    return [{"color": color, "value": None if i == 0 else float(value)} for i, (color, value) in enumerate(thresholds)]


def timeseries(
    title: str,
    queries: Sequence[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    threshold: float | None = None,
    stacked: bool = False,
    overrides: list[dict[str, Any]] | None = None,
) -> g.TimeSeries:
    """A time-series panel; ``threshold`` draws a red line at that value."""
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(*queries),
        unit=unit,
        gridPos=g.GridPos(h=height, w=width, x=0, y=0),
        thresholds=_steps([("green", 0), ("red", threshold)]) if threshold is not None else [],
        thresholdsStyleMode="line" if threshold is not None else "off",
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        fillOpacity=30 if stacked else 0,
        legendDisplayMode="table",
        legendPlacement="right" if width >= 16 else "bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        overrides=overrides or [],
    )


def stat(
    title: str,
    expr: str,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 4,
    height: int = 4,
    thresholds: Sequence[tuple[str, float]] = (("green", 0),),
    decimals: int | None = None,
    links: list[dict[str, Any]] | None = None,
) -> g.Stat:
    """A single-value panel of the last value of ``expr``."""
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, instant=True)],
        format=unit,
        decimals=decimals,
        reduceCalc="lastNotNull",
        graphMode="none",
        colorMode="value",
        noValue="–",
        thresholds=_steps(thresholds),
        gridPos=g.GridPos(h=height, w=width, x=0, y=0),
        links=links or [],
    )


def table(
    title: str,
    columns: Sequence[tuple[str, str]],
    *,
    join_on: Sequence[str],
    description: str = "",
    width: int = 24,
    height: int = 9,
    sort_by: str | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> g.Table:
    """A table of instant queries, one column each, joined on the ``join_on`` labels.

    ``columns`` holds ``(column title, expr)``; every expr must keep exactly the ``join_on``
    labels, so the rows merge one-to-one.
    """
    queries = [
        target(expr, title_, instant=True, table=True, ref=chr(ord("A") + i))
        for i, (title_, expr) in enumerate(columns)
    ]
    renames = {f"Value #{chr(ord('A') + i)}": title_ for i, (title_, _) in enumerate(columns)}
    order = {name: i for i, name in enumerate([*join_on, *renames])}
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        gridPos=g.GridPos(h=height, w=width, x=0, y=0),
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True}, "indexByName": order, "renameByName": renames},
            },
        ],
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)] if sort_by else [],
        overrides=overrides or [],
    )


@attr.s
class FeatureHeatmap(g.Panel):
    """Grafana's heatmap panel (v9+) over series: one row per series (e.g. one per feature)."""

    unit: str = attr.ib(default="short")
    scheme: str = attr.ib(default="Oranges")

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json(
            {
                "type": "heatmap",
                "fieldConfig": {"defaults": {"unit": self.unit}, "overrides": []},
                "options": {
                    # The data are the cells already: no bucketing of values.
                    "calculate": False,
                    "cellGap": 1,
                    "color": {
                        "mode": "scheme",
                        "scheme": self.scheme,
                        "steps": 64,
                        "exponent": 0.5,
                        "fill": "dark-orange",
                        "reverse": False,
                    },
                    "rowsFrame": {"layout": "auto"},
                    "yAxis": {"axisPlacement": "left", "reverse": False},
                    "legend": {"show": True},
                    "tooltip": {"show": True, "yHistogram": False},
                    "cellValues": {"unit": self.unit},
                    "exemplars": {"color": "rgba(255,0,255,0.7)"},
                    "filterValues": {"le": 1e-9},
                    "showValue": "never",
                },
            }
        )


def heatmap(
    title: str, expr: str, legend: str, *, unit: str = "short", description: str = "", height: int = 10
) -> FeatureHeatmap:
    """A full-width heatmap with one row per series of ``expr`` (named by ``legend``)."""
    return FeatureHeatmap(  # type: ignore[call-arg]  # grafanalib's Panel fields, through attrs inheritance
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, legend)],
        gridPos=g.GridPos(h=height, w=24, x=0, y=0),
        unit=unit,
    )


def row(title: str) -> g.RowPanel:
    return g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=0))


def layout(rows: Sequence[Sequence[g.Panel]]) -> list[g.Panel]:
    """Place rows of panels top to bottom, each row's panels left to right."""
    placed: list[g.Panel] = []
    y = 0
    for panels in rows:
        x, tallest = 0, 0
        for panel in panels:
            pos = panel.gridPos
            if x + pos.w > 24:
                raise ValueError(f"row is wider than 24 columns at {panel.title!r}")
            placed.append(attr.evolve(panel, gridPos=g.GridPos(h=pos.h, w=pos.w, x=x, y=y)))
            x += pos.w
            tallest = max(tallest, pos.h)
        y += tallest
    return placed


def datasource_variable(config: DashboardsConfig) -> g.Template:
    return g.Template(
        name=DATASOURCE_VARIABLE,
        label="Data source",
        query="prometheus",
        type="datasource",
        regex=config.datasource_regex or None,
        default=None,
    )


def query_variable(
    name: str, label: str, metric_selector: str, label_name: str, *, multi: bool = False, hidden: bool = False
) -> g.Template:
    """A variable listing the values of ``label_name`` on ``metric_selector``."""
    return g.Template(
        name=name,
        label=label,
        query=f"label_values({metric_selector}, {label_name})",
        dataSource=DATASOURCE,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_ASC,
        multi=multi,
        includeAll=multi,
        allValue=".+" if multi else None,
        hide=2 if hidden else 0,
    )


def dashboard(
    config: DashboardsConfig,
    key: str,
    title: str,
    description: str,
    panels: list[g.Panel],
    variables: Sequence[g.Template] = (),
) -> dict[str, Any]:
    """The dashboard JSON: stable uid ``<uid_prefix><key>``, common tags, datasource variable first."""
    board = g.Dashboard(
        title=f"{config.title_prefix}{title}",
        uid=uid(config, key),
        description=description,
        tags=list(config.tags),
        panels=panels,
        templating=g.Templating(list=[datasource_variable(config), *variables]),
        time=g.Time(f"now-{config.time_from}", "now"),
        refresh=config.refresh,
        timezone="browser",
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        schemaVersion=SCHEMA_VERSION,
        links=[
            g.DashboardLink(
                title="Model health", type="dashboards", tags=[config.tags[0]], asDropdown=True, includeVars=False
            )
        ],
    ).auto_panel_ids()
    # Round-trip through JSON: plain dicts and lists, nothing of grafanalib's left inside.
    return json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder, sort_keys=True))


def uid(config: DashboardsConfig, key: str) -> str:
    """The stable uid of dashboard ``key`` (Grafana allows at most 40 characters)."""
    value = f"{config.uid_prefix}{key}"
    if len(value) > 40:
        raise ValueError(f"dashboard uid {value!r} is longer than Grafana's 40 characters")
    return value


def model_link(
    config: DashboardsConfig, title: str = "Model: ${__data.fields.model} v${__data.fields.model_version}"
) -> dict[str, Any]:
    """A data link from a row holding ``model`` and ``model_version`` to that model's dashboard."""
    return {
        "title": title,
        "url": f"/d/{uid(config, 'model')}?${{__url_time_range}}&var-datasource=${{datasource}}"
        "&var-model=${__data.fields.model}&var-model_version=${__data.fields.model_version}",
    }


def report_link(config: DashboardsConfig, feature: bool = False) -> dict[str, Any] | None:
    """A link to the aggregator's drift report of the selected model, version and window; with
    ``feature``, a data link from a row holding ``feature`` to that feature's chart
    (``#feature=<name>``). None without ``aggregator_url``. Values are percent-encoded."""
    if config.aggregator_url is None:
        return None
    url = (
        f"{config.aggregator_url.rstrip('/')}/report/${{model:percentencode}}"
        "?version=${model_version:percentencode}&window=${window:percentencode}"
    )
    if feature:
        return {
            "title": "Drift report: ${__data.fields.feature}",
            "url": url + "#feature=${__data.fields.feature:percentencode}",
            "targetBlank": True,
        }
    return {"title": "Drift report ($window)", "url": url, "targetBlank": True}
