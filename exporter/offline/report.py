"""Rendering a drift report for people: a rich table with drifted rows highlighted."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from exporter.offline.drift import DriftReport


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _missing(reference: float, current: float) -> str:
    if reference == 0 and current == 0:
        return "0%"
    return f"{reference:.1%} → {current:.1%}"


def drift_table(report: DriftReport) -> Table:
    drifted = len(report.drifted)
    table = Table(
        title=(
            f"Drift: {drifted} of {len(report.features)} features "
            f"({report.reference_rows:,} reference rows vs {report.current_rows:,} current, "
            f"binning {report.binning})"
        ),
        title_justify="left",
    )
    for header, justify in (
        ("feature", "left"),
        ("kind", "left"),
        ("PSI", "right"),
        ("KS D", "right"),
        ("KS p", "right"),
        ("JS", "right"),
        ("χ² p", "right"),
        ("W₁ norm", "right"),
        ("missing", "right"),
        ("drift", "center"),
    ):
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    ordered = sorted(report.features.items(), key=lambda item: (not item[1].drift, -_sort_key(item[1].psi)))
    for name, result in ordered:
        table.add_row(
            name,
            result.kind,
            _number(result.psi),
            _number(result.ks_statistic),
            _number(result.ks_pvalue),
            _number(result.js_distance),
            _number(result.chi2_pvalue),
            _number(result.wasserstein_normed),
            _missing(result.reference_missing_ratio, result.current_missing_ratio),
            "DRIFT " + ",".join(result.fired) if result.drift else "ok",
            style="bold red" if result.drift else None,
        )
    return table


def _sort_key(value: float) -> float:
    return -1.0 if math.isnan(value) else value


def report_console() -> Console:
    """stdout console; piped output gets room for every column instead of 80 folds."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 140))


def estimated_table(report: DriftReport) -> Table | None:
    """The label-free performance estimate (current data with scores and no labels), if any."""
    estimate = report.performance_estimated
    if estimate is None:
        return None
    table = Table(title=f"Estimated performance without labels ({estimate.count:,} scored rows)", title_justify="left")
    for header in ("metric", "estimate", "± stderr"):
        table.add_column(header, justify="left" if header == "metric" else "right", no_wrap=True)
    for metric, value in estimate.metrics.items():
        table.add_row(metric, _number(value), _number(estimate.stderr.get(metric)))
    return table


def print_report(report: DriftReport, console: Console) -> None:
    console.print(drift_table(report))
    estimated = estimated_table(report)
    if estimated is not None:
        console.print(estimated)
