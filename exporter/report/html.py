"""``render_html(report) -> str``: the drift report as one self-contained page.

The page inlines everything it needs (uPlot, its stylesheet, the page's own script and
style) and carries a Content-Security-Policy of ``default-src 'none'``, so viewing it
makes no request at all. Text comes from Python with every feature name, category and
metric name HTML-escaped; the charts' data travels as JSON in a ``<script
type="application/json">`` block (``<``, ``>`` and ``&`` written as ``\\u`` escapes, so no
value can close the block) and is drawn on canvases, where text is never markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from exporter.report.data import FeatureReport, ReportData, Statistic

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


@cache
def static_text(name: str) -> str:
    return resources.files("exporter.report").joinpath("static", name).read_text(encoding="utf-8")


def utc_text(seconds: float) -> str:
    """A Unix time as the page shows it: ``2026-12-07 10:00:00 UTC``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _json_for_script(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _ratio(value: float) -> str:
    if value == 0:
        return "0%"
    return f"{value:.1%}" if value >= 0.001 else f"{value:.2%}" if value >= 0.0001 else f"{value:.1e}"


def _missing(feature: FeatureReport) -> str:
    d = feature.drift
    return f"{_ratio(d.reference_missing_ratio)} → {_ratio(d.current_missing_ratio)}"


def _badge(feature: FeatureReport) -> str:
    if feature.drift.drift:
        fired = ", ".join(feature.drift.fired).upper()
        return f'<span class="badge drift">Drift · {_e(fired)}</span>'
    return '<span class="badge ok">No drift</span>'


def _statistic_cell(stat: Statistic | None) -> str:
    if stat is None:
        return '<td class="muted">–</td>'
    css = ' class="crossed"' if stat.crossed else ""
    return f"<td{css}>{_number(stat.value)}</td>"


def _stat(feature: FeatureReport, key: str) -> Statistic | None:
    return next((s for s in feature.statistics if s.key == key), None)


def _rule_text(report: ReportData) -> str:
    r = report.rule
    numeric = " or ".join(_threshold_phrase(m, r.threshold(m)) for m in r.numeric_methods)
    categorical = " or ".join(_threshold_phrase(m, r.threshold(m)) for m in r.categorical_methods)
    return (
        f"A feature drifts when a statistic reaches its threshold — numeric: {numeric}; "
        f"categorical: {categorical} — <em>and</em> lies beyond its null quantile for the actual sample "
        f"sizes at α = {r.alpha:g} (split over the methods), with at least {r.min_samples:,} present "
        "current values. ▲ marks a value at or past its threshold; a method that also passed the "
        "null quantile <em>fired</em>."
    )


def _threshold_phrase(method: str, threshold: float) -> str:
    name = {"psi": "PSI", "ks": "KS D", "js": "JS distance"}.get(method, method)
    return f"{_e(name)} ≥ {threshold:g}"


def _headline_metric(report: ReportData) -> tuple[str, str] | None:
    """One performance figure for the summary: reference → current (realised, else estimated)."""
    estimated = report.performance_estimated or {}
    for metric in ("roc_auc", "accuracy", "f1", "rmse", "mae"):
        values = report.performance.get(metric, {})
        reference = values.get("reference")
        current = values.get("current")
        label = metric
        if current is None and isinstance(estimated.get(metric), int | float):
            current, label = float(estimated[metric]), f"{metric} (estimated)"
        if reference is not None or current is not None:
            return label, f"{_number(reference, 3)} → {_number(current, 3)}"
    return None


def _summary(report: ReportData, anchors: dict[str, str]) -> str:
    total = len(report.features)
    drifted = report.drifted
    if drifted:
        verdict = f'<p class="verdict drifted">{len(drifted)} of {total} features drifted</p>'
        links = "".join(f'<li><a href="#{anchors[name]}">{_e(name)}</a></li>' for name in drifted)
        verdict += f'<ul class="drifted-list" aria-label="drifted features">{links}</ul>'
    else:
        verdict = f'<p class="verdict clean">No drift in {total} features</p>'
    facts = [
        ("reference rows", f"{report.reference_rows:,}"),
        ("current rows", f"{report.current_rows:,}"),
        ("drifted", f"{len(drifted)} / {total} ({(len(drifted) / total if total else 0):.0%})"),
        ("reference", "profile" if report.reference_kind == "profile" else "raw data"),
        ("binning", report.binning),
    ]
    if report.window:
        facts.insert(0, ("window", report.window))
    if report.evaluated_at is not None:
        facts.insert(1 if report.window else 0, ("evaluated", utc_text(report.evaluated_at)))
    if report.prediction is not None:
        verdict_text = "drift" if report.prediction.drift.drift else "no drift"
        facts.append(("prediction", f"{verdict_text}, PSI {_number(report.prediction.drift.psi, 3)}"))
    headline = _headline_metric(report)
    if headline:
        facts.append(headline)
    cells = "".join(
        f'<div><span class="label">{_e(k)}</span><span class="value">{_e(v)}</span></div>' for k, v in facts
    )
    return (
        f'<section class="card" id="summary">{verdict}<div class="facts">{cells}</div>'
        f'<p class="note">{_rule_text(report)}</p></section>'
    )


def _overview(report: ReportData, anchors: dict[str, str]) -> str:
    rows = []
    for f in report.ordered_features:
        pvalue = _stat(f, "ks_pvalue") or _stat(f, "chi2_pvalue")
        rows.append(
            f'<tr class="{"drifted" if f.drift.drift else ""}">'
            f'<td class="name"><a href="#{anchors[f.name]}">{_e(f.name)}</a></td>'
            f'<td class="kind">{_e(f.kind)}</td>'
            f"{_statistic_cell(_stat(f, 'psi'))}{_statistic_cell(_stat(f, 'ks_statistic'))}"
            f"{_statistic_cell(_stat(f, 'js_distance'))}{_statistic_cell(pvalue)}"
            f"{_statistic_cell(_stat(f, 'wasserstein_normed'))}"
            f"<td>{_missing(f)}</td><td>{_badge(f)}</td></tr>"
        )
    head = (
        '<tr><th>feature</th><th class="kind">kind</th><th>PSI</th><th>KS D</th><th>JS</th><th>p-value</th>'
        "<th>W₁ norm</th><th>missing</th><th>verdict</th></tr>"
    )
    return (
        '<section class="card" id="overview"><h2>All features</h2><div class="overview-wrap">'
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _stats_table(feature: FeatureReport, report: ReportData) -> str:
    d = feature.drift
    rows = []
    for s in feature.statistics:
        value = _number(s.value)
        if s.key == "ks_statistic" and d.ks_error_bound:
            value += f'<span class="bound">± {_number(d.ks_error_bound)} (binned)</span>'
        css = ' class="crossed"' if s.crossed else ""
        if s.fired:
            status = '<span class="badge drift">fired</span>'
        elif s.crossed:
            status = '<span class="badge warn">crossed</span>'
        else:
            status = ""
        threshold = "–" if s.threshold is None else f"≥ {s.threshold:g}"
        rows.append(f"<tr><td>{_e(s.label)}</td><td{css}>{value}</td><td>{threshold}</td><td>{status}</td></tr>")
    rows.append(f"<tr><td>missing</td><td>{_missing(feature)}</td><td></td><td></td></tr>")
    rows.append(
        f"<tr><td>present values</td><td>{d.reference_count:,} → {d.current_count:,}</td><td></td><td></td></tr>"
    )
    table = (
        '<table class="stats"><thead><tr><th>statistic</th><th>value</th><th>threshold</th><th></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    notes = []
    if d.current_count < report.rule.min_samples:
        notes.append(
            f'<p class="note alert">Only {d.current_count:,} current values (fewer than '
            f"{report.rule.min_samples:,}): no verdict, whatever the statistics say.</p>"
        )
    elif feature.crossed and not d.drift:
        notes.append(
            '<p class="note">A statistic crossed its threshold but not its null quantile: within what '
            "sampling noise explains for these sample sizes.</p>"
        )
    return table + "".join(notes)


def _chart_notes(feature: FeatureReport) -> str:
    chart = feature.chart
    notes = [f"Bars: {_e(chart.basis)}; heights are shares of present values."]
    shares: dict[str, float] = dict(zip(chart.roles, chart.current))
    tails = [
        f"{_ratio(shares[role])} {where}"
        for role, where in (("lower_tail", "below"), ("upper_tail", "above"))
        if shares.get(role)
    ]
    if tails:
        notes.append(f"Current values outside the reference range: {' and '.join(tails)} it.")
    unseen = sum(c for c, role in zip(chart.current, chart.roles) if role == "unseen")
    if unseen:
        notes.append(f"Values never seen in the reference (“(new)”): {_ratio(unseen)} of current.")
    if "__other__" in chart.labels:
        notes.append("<code>__other__</code>: values outside the reference's top categories.")
    return f'<p class="note">{" ".join(notes)}</p>'


def _key() -> str:
    return (
        '<div class="keys"><span class="key"><span class="swatch ref"></span>reference (wide, light)</span>'
        '<span class="key"><span class="swatch cur"></span>current (narrow, dark)</span></div>'
    )


def _feature_section(feature: FeatureReport, anchor: str, index: int, report: ReportData, role: str = "") -> str:
    css = "card feature drifted" if feature.drift.drift else "card feature"
    title = f"{_e(role)}: " if role else ""
    return (
        f'<article class="{css}" id="{anchor}" data-drift="{str(feature.drift.drift).lower()}" '
        f'data-name="{_e(feature.name)}">'
        f'<h3>{title}<span class="name">{_e(feature.name)}</span>{_badge(feature)}'
        f'<span class="badge kind">{_e(feature.kind)}</span></h3>'
        f'<div class="body"><div><div class="chart" data-chart="{index}"></div>{_chart_notes(feature)}</div>'
        f"<div>{_stats_table(feature, report)}</div></div></article>"
    )


def _format_estimate(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(float(value))
    if isinstance(value, dict):
        main = value.get("value", value.get("estimate"))
        stderr = value.get("stderr", value.get("std_error"))
        if isinstance(main, int | float):
            return _number(float(main)) + (f" ± {_number(float(stderr))}" if isinstance(stderr, int | float) else "")
    return _e(json.dumps(value, allow_nan=False, default=str))


def _performance(report: ReportData) -> str:
    estimated = report.performance_estimated or {}
    metrics = list(report.performance) + [m for m in estimated if m not in report.performance]
    if not metrics:
        return ""
    has_current = any(v.get("current") is not None for v in report.performance.values())
    head = "<tr><th>metric</th><th>reference</th>"
    head += "<th>current (with labels)</th>" if has_current else ""
    head += "<th>current (estimated, no labels)</th>" if estimated else ""
    rows = []
    for metric in metrics:
        values = report.performance.get(metric, {})
        row = f"<tr><td>{_e(metric)}</td><td>{_number(values.get('reference'))}</td>"
        if has_current:
            row += f"<td>{_number(values.get('current'))}</td>"
        if estimated:
            row += f"<td>{_format_estimate(estimated[metric]) if metric in estimated else '–'}</td>"
        rows.append(row + "</tr>")
    return (
        '<section class="card" id="performance"><h2>Performance</h2>'
        f"<table><thead>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _licence_footer() -> str:
    return (
        "<footer><p>This page holds bins, shares and statistics only: no records, request ids or raw "
        "values (numeric bin boundaries and the reference's top category names aside). It needs no "
        "network to view.</p>"
        "<details><summary>Charts drawn with uPlot 1.6.32 (MIT licence)</summary>"
        f"<pre>{_e(static_text('uPlot.LICENSE'))}</pre></details></footer>"
    )


def render_html(report: ReportData, between: Callable[[], None] = lambda: None) -> str:
    """The whole page, one string: summary, overview, outputs, then one section per feature.

    ``between()`` runs after each section (the live report yields to scrapes there)."""
    features = report.ordered_features
    anchors = {f.name: f"feature-{i}" for i, f in enumerate(features)}
    charts: list[dict[str, Any]] = []
    sections: list[str] = []
    outputs: list[str] = []
    for role, feature in (("prediction", report.prediction), ("label", report.label)):
        if feature is not None:
            outputs.append(_feature_section(feature, f"{role}-distribution", len(charts), report, role))
            charts.append(feature.chart.as_dict())
    for feature in features:
        sections.append(_feature_section(feature, anchors[feature.name], len(charts), report))
        charts.append(feature.chart.as_dict())
        between()
    title = report.title or "Drift report"
    subtitle = ""
    if report.window:
        subtitle = f'<p class="muted">window {_e(report.window)}</p>'
    outputs_html = ""
    if outputs:
        outputs_html = '<h2 id="outputs">Prediction and label</h2>' + "".join(outputs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f"<style>{static_text('uPlot.min.css')}</style><style>{static_text('report.css')}</style></head><body><main>"
        f"<header><h1>{_e(title)}</h1>{subtitle}</header>"
        f"{_summary(report, anchors)}{_overview(report, anchors)}"
        f'<h2 id="features">Features, drifted first</h2>{_key()}{"".join(sections)}'
        f"{outputs_html}{_performance(report)}"
        f"{_licence_footer()}</main>"
        f'<script type="application/json" id="drift-report-charts">{_json_for_script(charts)}</script>'
        f"<script>{static_text('uPlot.iife.min.js')}</script><script>{static_text('report.js')}</script>"
        "</body></html>\n"
    )
