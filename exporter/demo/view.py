"""The demo's live terminal view: traffic, the most drifted features, performance, GPU."""

from __future__ import annotations

import math

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from exporter.demo.readings import Readings

TOP_FEATURES = 8


def render(readings: Readings, *, elapsed: float, drift_after: float, rate: float, urls: dict[str, str], window: str) -> Group:
    """One frame of the view; a pure function of the readings so it can be tested as text."""
    phase = (
        Text(f"baseline — drift starts in {drift_after - elapsed:.0f}s", style="green")
        if elapsed < drift_after
        else Text(f"drift injected {elapsed - drift_after:.0f}s ago", style="bold red")
    )
    header = Text.assemble(("model-health demo ", "bold"), f"· {elapsed:.0f}s · ", phase)

    traffic = Table.grid(padding=(0, 2))
    traffic.add_column(style="dim")
    traffic.add_column(justify="right")
    traffic.add_row("predictions", f"{readings.predictions:,.0f}  (~{rate:.0f}/s)")
    traffic.add_row("labels joined", f"{readings.labels_joined:,.0f}")
    traffic.add_row("rejected records", f"{readings.rejected:,.0f}")
    traffic.add_row(f"window {window} samples", _num(readings.window_samples, "{:,.0f}"))
    traffic.add_row("drifted features", _num(readings.drifted_ratio, "{:.0%}"))
    traffic.add_row("prediction PSI", _num(readings.prediction_psi, "{:.3f}"))
    if not math.isnan(readings.gpu_utilization):
        traffic.add_row("GPU utilization", f"{readings.gpu_utilization:.0%}")
        traffic.add_row(
            "GPU memory", f"{readings.gpu_memory_used / 2**30:,.1f} / {readings.gpu_memory_total / 2**30:,.1f} GiB"
        )

    features = Table(title=f"most drifted features (window {window})", expand=False)
    features.add_column("feature")
    features.add_column("PSI", justify="right")
    features.add_column("KS D", justify="right")
    features.add_column("drift")
    for feature in readings.top(TOP_FEATURES):
        features.add_row(
            feature.feature,
            _num(feature.psi, "{:.3f}"),
            _num(feature.ks, "{:.3f}"),
            Text("DRIFT", style="bold red") if feature.drift else Text("ok", style="green"),
        )

    performance = Table(title="performance vs reference")
    performance.add_column("metric")
    performance.add_column(f"window {window}", justify="right")
    performance.add_column("reference", justify="right")
    for metric, (value, reference) in sorted(readings.performance.items()):
        performance.add_row(metric, _num(value, "{:.3f}"), _num(reference, "{:.3f}"))

    links = Text("\n".join(f"{name}: {url}" for name, url in urls.items()), style="cyan")
    return Group(
        header,
        Panel(traffic, title="traffic"),
        features,
        performance,
        links,
        Text("Ctrl-C stops everything the demo started.", style="dim"),
    )


def _num(value: float, fmt: str) -> str:
    return "—" if math.isnan(value) else fmt.format(value)
