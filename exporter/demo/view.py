"""The demo's live terminal view: traffic, the most drifted features, performance, GPU, alerts."""

from __future__ import annotations

import math

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from exporter.demo.readings import Frame, Readings

TOP_FEATURES = 8


def render(
    frame: Frame,
    *,
    elapsed: float,
    drift_after: float,
    rate: float,
    urls: dict[str, str],
    window: str,
    gpu_source: str = "",
    prometheus_note: str | None = None,
) -> Group:
    """One frame of the view; a pure function of its inputs so it can be tested as text.

    ``prometheus_note`` is shown instead of the alerts where Prometheus is not running
    (not installed, or not started yet).
    """
    phase = (
        Text(f"baseline — drift starts in {drift_after - elapsed:.0f}s", style="green")
        if elapsed < drift_after
        else Text(f"drift injected {elapsed - drift_after:.0f}s ago", style="bold red")
    )
    header = Text.assemble(("model-health demo ", "bold"), f"· {elapsed:.0f}s · ", phase)
    top = Table.grid(padding=(0, 1), expand=False)
    top.add_row(
        Panel(_traffic(frame, rate, window), title="traffic"),
        Panel(_gpu(frame.sidecar, gpu_source), title="GPU load (sidecar)"),
    )
    links = Text("\n".join(f"{name}: {url}" for name, url in urls.items()), style="cyan")
    return Group(
        header,
        top,
        _features(frame.aggregator, window),
        _performance(frame.aggregator, window),
        _alerts(frame, prometheus_note),
        links,
        Text("Ctrl-C stops everything the demo started.", style="dim"),
    )


def _traffic(frame: Frame, rate: float, window: str) -> Table:
    aggregator, sidecar = frame.aggregator, frame.sidecar
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    table.add_row("served (sidecar)", f"{sidecar.predictions:,.0f}  (~{rate:.0f}/s)")
    table.add_row("aggregated", f"{aggregator.predictions:,.0f}")
    table.add_row("labels joined", f"{aggregator.labels_joined:,.0f}")
    table.add_row("rejected records", f"{sidecar.rejected + aggregator.rejected:,.0f}")
    table.add_row(f"window {window} samples", _num(aggregator.window_samples, "{:,.0f}"))
    table.add_row("drifted features", _num(aggregator.drifted_ratio, "{:.0%}"))
    table.add_row("prediction PSI", _num(aggregator.prediction_psi, "{:.3f}"))
    return table


def _gpu(sidecar: Readings, source: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    table.add_row("NVML", source or "—")
    if math.isnan(sidecar.gpu_utilization) and math.isnan(sidecar.gpu_memory_total):
        table.add_row("GPU", "no sample yet")
        return table
    table.add_row("GPU utilization", _num(sidecar.gpu_utilization, "{:.0%}"))
    used, total = sidecar.gpu_memory_used, sidecar.gpu_memory_total
    table.add_row("GPU memory", f"{_num(used / 2**30, '{:,.1f}')} / {_num(total / 2**30, '{:,.1f}')} GiB")
    return table


def _features(readings: Readings, window: str) -> Table:
    table = Table(title=f"most drifted features (window {window})", expand=False)
    table.add_column("feature")
    table.add_column("PSI", justify="right")
    table.add_column("KS D", justify="right")
    table.add_column("drift")
    for feature in readings.top(TOP_FEATURES):
        table.add_row(
            feature.feature,
            _num(feature.psi, "{:.3f}"),
            _num(feature.ks, "{:.3f}"),
            Text("DRIFT", style="bold red") if feature.drift else Text("ok", style="green"),
        )
    return table


def _performance(readings: Readings, window: str) -> Table:
    table = Table(title="performance vs reference")
    table.add_column("metric")
    table.add_column(f"window {window}", justify="right")
    table.add_column("reference", justify="right")
    for metric, (value, reference) in sorted(readings.performance.items()):
        table.add_row(metric, _num(value, "{:.3f}"), _num(reference, "{:.3f}"))
    return table


def _alerts(frame: Frame, note: str | None) -> Table | Text:
    status = frame.prometheus
    if status is None:
        return Text(note or "Prometheus not answering", style="yellow")
    up = sum(health == "up" for health in status.targets.values())
    table = Table(title=f"alerts (Prometheus: {status.rules} rules, {up}/{len(status.targets)} targets up)")
    table.add_column("alert")
    table.add_column("state")
    table.add_column("severity")
    table.add_column("labels")
    for alert in status.alerts:
        style = "bold red" if alert.state == "firing" else "yellow"
        table.add_row(alert.name, Text(alert.state, style=style), alert.severity, alert.detail)
    if not status.alerts:
        table.add_row(Text("none pending or firing", style="green"), "", "", "")
    return table


def _num(value: float, fmt: str) -> str:
    return "—" if math.isnan(value) else fmt.format(value)
