"""The ``model-health`` command line."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from detectors.columns import ColumnError
from detectors.profile import ProfileSettings, build_profile
from exporter import __version__
from exporter.errors import UserError
from exporter.offline.drift import run_drift
from exporter.offline.report import print_report, report_console
from exporter.offline.tables import column_errors, read_table
from exporter.profiles import save_profile

T = TypeVar("T")
# Above this many cells a comparison takes long enough that a bar beats silence.
PROGRESS_MIN_CELLS = 2_000_000
EXIT_USAGE = 2
EXIT_DRIFT = 3


def _stderr() -> Console:
    return Console(stderr=True)


def _split_option(values: tuple[str, ...]) -> list[str]:
    """``--features a,b --features c`` → ``[a, b, c]``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_timestamp(text: str) -> float:
    """Epoch seconds or RFC 3339 (``2026-11-01T12:00:00Z``) → epoch seconds."""
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"{text!r} is neither epoch seconds nor RFC 3339") from None
        if parsed.tzinfo is None:
            raise click.BadParameter(f"{text!r} has no time zone; add Z or an offset") from None
        return parsed.timestamp()
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter(f"{text!r} is not a valid epoch time")
    return value


class _Progress:
    """Rich progress on stderr, shown only for inputs large enough to wait for."""

    def __init__(self, cells: int) -> None:
        self.enabled = cells >= PROGRESS_MIN_CELLS

    def __call__(self, items: Iterable[T], total: int, description: str) -> Iterable[T]:
        if not self.enabled:
            yield from items
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=_stderr(), transient=True) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-health")
def cli() -> None:
    """Drift and model-health monitoring for ML models, exposed as Prometheus metrics."""


@cli.group()
def reference() -> None:
    """Build reference profiles."""


@reference.command("build")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Model name.")
@click.option("--model-version", required=True, help="Model version.")
@click.option("--features", multiple=True, help="Feature columns, comma-separated (default: all but prediction/label).")
@click.option("--categorical", multiple=True, help="Columns to treat as categorical, comma-separated.")
@click.option("--prediction", default=None, help="Prediction column (score, class or regression value).")
@click.option("--label", default=None, help="Ground-truth label column.")
@click.option("--trained-at", default=None, help="When the model was trained: epoch seconds or RFC 3339.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Profile file to write (Parquet).")
@click.option("--fine-bins", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--psi-bins", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--top-k", default=50, show_default=True, type=click.IntRange(min=1))
def reference_build(
    data: Path,
    model: str,
    model_version: str,
    features: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction: str | None,
    label: str | None,
    trained_at: str | None,
    out: Path,
    fine_bins: int,
    psi_bins: int,
    top_k: int,
) -> None:
    """Build a reference profile from DATA (Parquet or CSV)."""
    trained = parse_timestamp(trained_at) if trained_at else None
    if fine_bins % psi_bins:
        raise click.BadParameter(f"--fine-bins ({fine_bins}) must be a multiple of --psi-bins ({psi_bins})")
    table = read_table(data)
    with column_errors(data):
        profile = build_profile(
            table,
            model=model,
            model_version=model_version,
            created_at=time.time(),
            features=_split_option(features) or None,
            categorical=_split_option(categorical),
            prediction=prediction,
            label=label,
            trained_at=trained,
            settings=ProfileSettings(fine_bins=fine_bins, psi_bins=psi_bins, top_k=top_k),
        )
    path = save_profile(profile, out)
    meta = profile.metadata
    summary = f"profile {meta.model} v{meta.model_version}: {meta.rows:,} rows, {len(meta.features)} features"
    if meta.performance:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(meta.performance.items()) if not math.isnan(v))
        summary += f"; reference {meta.task} performance: {shown}"
    _stderr().print(f"{summary} → {path}")


@cli.command()
@click.option(
    "--reference",
    "reference_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Reference data (Parquet/CSV) or a profile.",
)
@click.option(
    "--current", "current_path", required=True, type=click.Path(path_type=Path), help="Current data (Parquet/CSV)."
)
@click.option("--binning", type=click.Choice(["reference", "evidently"]), default="reference", show_default=True)
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json", "html"]), default="table", show_default=True
)
@click.option("--features", multiple=True, help="Only these columns, comma-separated.")
@click.option("--categorical", multiple=True, help="Columns to treat as categorical (raw reference only).")
@click.option("--fail-on-drift", is_flag=True, help=f"Exit with status {EXIT_DRIFT} when any feature drifts.")
def drift(
    reference_path: Path,
    current_path: Path,
    binning: str,
    output_format: str,
    features: tuple[str, ...],
    categorical: tuple[str, ...],
    fail_on_drift: bool,
) -> None:
    """Compare CURRENT data against a REFERENCE data set or profile."""
    size = current_path.stat().st_size if current_path.is_file() else 0
    # About 8 bytes a cell: a cheap estimate before anything is read.
    if output_format == "html":  # the drift report page (exporter/report), on stdout
        from exporter.report.offline import write_html_report

        drifted = write_html_report(
            reference_path,
            current_path,
            binning=binning,  # type: ignore[arg-type]
            features=_split_option(features),
            categorical=_split_option(categorical),
            track=_Progress(size // 8),
        )
        if fail_on_drift and drifted:
            sys.exit(EXIT_DRIFT)
        return
    report = run_drift(
        reference_path,
        current_path,
        binning=binning,  # type: ignore[arg-type]
        features=_split_option(features),
        categorical=_split_option(categorical),
        track=_Progress(size // 8),
    )
    if output_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, allow_nan=False))
    else:
        print_report(report, report_console())
    if fail_on_drift and report.drifted:
        sys.exit(EXIT_DRIFT)


@cli.command()
@click.option("--offline", is_flag=True, help="Instead of the live loop: two files, a profile and the drift report.")
@click.option("--headless", is_flag=True, help="No live view: a progress line every 5 s and a JSON summary at the end.")
@click.option("--rate", default=200.0, show_default=True, type=click.FloatRange(min=1), help="Predictions per second.")
@click.option(
    "--drift-after", default=60.0, show_default=True, type=click.FloatRange(min=0), help="Seconds before drift begins."
)
@click.option(
    "--label-delay",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds until a label follows its prediction.",
)
@click.option(
    "--window-seconds",
    default=60,
    show_default=True,
    type=click.IntRange(min=2),
    help="Span of the drift window shown.",
)
@click.option(
    "--port",
    default=9877,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the aggregator's /metrics (a free one if taken); the sidecar takes 9878 and Prometheus 9090 likewise; 0: free ports for all.",
)
@click.option(
    "--duration", default=None, type=click.FloatRange(min=1), help="Stop after this many seconds (default: Ctrl-C)."
)
@click.option("--until-drift", is_flag=True, help="Stop once drift shows on exactly the drifted features.")
@click.option(
    "--protocol",
    default="v1",
    show_default=True,
    type=click.Choice(["v1", "v2"]),
    help="Body of the KServe logger events: V1 instances, or Open Inference Protocol v2 tensors.",
)
@click.option("--no-prometheus", is_flag=True, help="Leave Prometheus out even where it is installed.")
@click.option(
    "--rows", default=20_000, show_default=True, type=click.IntRange(min=1000), help="Rows per data set (--offline)."
)
@click.option("--out", "out", default=None, type=click.Path(path_type=Path), help="Keep the generated files here.")
@click.option("--seed", default=7, show_default=True)
def demo(
    offline: bool,
    headless: bool,
    rate: float,
    drift_after: float,
    label_delay: float,
    window_seconds: int,
    port: int,
    duration: float | None,
    until_drift: bool,
    protocol: str,
    no_prometheus: bool,
    rows: int,
    out: Path | None,
    seed: int,
) -> None:
    """The whole loop on this machine, no setup: a synthetic model logging to the sidecar,
    broker, aggregator, GPU collector, Prometheus with the generated rules (where installed),
    drifting traffic and a live view."""
    if offline:
        _offline_demo(rows, out, seed)
        return
    from exporter.demo.live import DemoOptions, LiveDemo

    options = DemoOptions(
        rate=rate,
        drift_after=drift_after,
        label_delay=label_delay,
        bucket_seconds=max(1, window_seconds // 12),
        window_seconds=window_seconds,
        port=port,
        workdir=out,
        duration=duration,
        until_drift=until_drift,
        seed=seed,
        protocol=protocol,  # type: ignore[arg-type]
        prometheus=not no_prometheus,
    )
    # Ctrl-C and SIGTERM both unwind the demo, so every part it started is stopped.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = LiveDemo(options, report_console()).run(headless=headless)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        return
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    if headless:
        click.echo(json.dumps(result.as_dict(), allow_nan=False, default=str))
    if until_drift and not result.reached_drift:
        sys.exit(1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _offline_demo(rows: int, out: Path | None, seed: int) -> None:
    """Generate a reference and a drifted current set, build the profile, show the drift."""
    import pyarrow.parquet as pq

    from exporter.demo.synthetic import drifted_columns, synthetic_table

    console = report_console()
    workdir = out or Path(tempfile.mkdtemp(prefix="model-health-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shape: dict[str, Any] = {"numeric": 8, "categorical": 3, "drifted": 3}
    reference_path, current_path = workdir / "reference.parquet", workdir / "current.parquet"
    pq.write_table(synthetic_table(rows, seed=seed, **shape), reference_path)
    pq.write_table(synthetic_table(rows, seed=seed + 1, drift=True, **shape), current_path)
    console.print(f"[bold]model-health demo[/] — data in {workdir}")
    console.print(f"drift injected into: {', '.join(drifted_columns(**shape))}")
    profile = build_profile(
        read_table(reference_path),
        model="demo-credit",
        model_version="1",
        created_at=time.time(),
        prediction="prediction",
        label="label",
    )
    profile_path = save_profile(profile, workdir / "profile.parquet")
    console.print(f"profile: {profile_path} (reference performance {_fmt(profile.metadata.performance)})")
    print_report(run_drift(profile_path, current_path), console)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Aggregator YAML config.")
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
def aggregator(config_path: Path, log_level: str) -> None:
    """Consume prediction logs from Kafka and serve drift metrics on /metrics."""
    import logging
    import threading

    from exporter.aggregator.service import install_signal_handlers, serve
    from exporter.config import AggregatorConfig, load_config
    from exporter.pipeline.decode import BatchDecoder

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The Kafka client narrates every connection at INFO; its warnings are what matter.
    for noisy in ("kafka", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(log_level)))
    config = load_config(config_path, AggregatorConfig)
    stop = threading.Event()
    install_signal_handlers(stop)
    serve(config, BatchDecoder(config.kafka.labels_topic, config.kafka.format), stop)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Sidecar YAML config.")
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
def sidecar(config_path: Path, log_level: str) -> None:
    """Take prediction logs over HTTP (KServe logger, native JSON), serve pod metrics, forward to Kafka."""
    import logging
    import threading

    from exporter.aggregator.service import install_signal_handlers
    from exporter.config import SidecarConfig, load_config
    from exporter.sidecar import serve as serve_sidecar

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(log_level)))
    config = load_config(config_path, SidecarConfig)
    stop = threading.Event()
    install_signal_handlers(stop, "flushing the queue and stopping")
    serve_sidecar(config, stop)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Injector YAML config.")
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
def injector(config_path: Path, log_level: str) -> None:
    """Admission webhook (HTTPS, POST /mutate) that injects the model-health sidecar into model pods."""
    import logging
    import threading

    from exporter.aggregator.service import install_signal_handlers
    from exporter.config import InjectorConfig, load_config
    from exporter.injector.service import serve as serve_injector

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path, InjectorConfig)
    stop = threading.Event()
    install_signal_handlers(stop, "stopping")
    serve_injector(config, stop)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Relay YAML config.")
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
def relay(config_path: Path, log_level: str) -> None:
    """Turn Alertmanager's retrain alerts (POST /v1/alertmanager) into signed retraining webhooks."""
    import logging
    import threading

    from exporter.aggregator.service import install_signal_handlers
    from exporter.config import RelayConfig, load_config
    from exporter.relay.service import serve as serve_relay

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path, RelayConfig)
    stop = threading.Event()
    install_signal_handlers(stop, "stopping; pending deliveries stay on disk")
    try:
        serve_relay(config, stop)
    except UserError as exc:  # a secret file or the state directory: name the config it came from
        raise UserError(f"{config_path}: {exc}") from None


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Node agent YAML config.")
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
@click.option(
    "--fake-nvml",
    "fake_nvml",
    default=None,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Replay a recorded NVML capture (e.g. exporter/gpu/fixtures/h200) instead of the real library: demos without a GPU.",
)
def node(config_path: Path, log_level: str, fake_nvml: Path | None) -> None:
    """GPU node agent (DaemonSet): every GPU of the node, processes attributed to pods, on /metrics."""
    import logging
    import threading

    from exporter.aggregator.service import install_signal_handlers
    from exporter.config import NodeConfig, load_config
    from exporter.gpu.node import serve as serve_node

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path, NodeConfig)
    nvml = None
    if fake_nvml is not None:
        from exporter.gpu.fake import load_fake

        try:
            nvml = load_fake(fake_nvml)
        except (OSError, ValueError, KeyError) as exc:  # json.JSONDecodeError is a ValueError
            raise UserError(f"--fake-nvml {fake_nvml}: not an NVML capture ({exc})") from None
    stop = threading.Event()
    install_signal_handlers(stop, "stopping")
    serve_node(config, stop, nvml=nvml)


@cli.command()
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write into."
)
@click.option("--config", "config_path", default=None, type=click.Path(path_type=Path), help="Dashboards YAML config.")
def dashboards(out: Path, config_path: Path | None) -> None:
    """Write the Grafana dashboards (fleet, model, gpu, pipeline) as JSON files."""
    from dashboards import write_files
    from exporter.config import DashboardsConfig, load_config

    config = load_config(config_path, DashboardsConfig) if config_path else DashboardsConfig()
    _print_written(write_files(out, config), "dashboard")


@cli.command()
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write into."
)
@click.option("--config", "config_path", default=None, type=click.Path(path_type=Path), help="Alerts YAML config.")
def alerts(out: Path, config_path: Path | None) -> None:
    """Write rules.yaml, prometheusrule.yaml and alertmanager.yaml."""
    from alerts import write_files
    from exporter.config import AlertsConfig, load_config

    config = load_config(config_path, AlertsConfig) if config_path else AlertsConfig()
    _print_written(write_files(out, config), "file")


@cli.command()
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write into."
)
@click.option("--config", "config_path", default=None, type=click.Path(path_type=Path), help="Gates YAML config.")
def gates(out: Path, config_path: Path | None) -> None:
    """Write Flagger MetricTemplates (and Canaries), an Argo Rollouts AnalysisTemplate, KEDA ScaledObjects,
    prometheus-adapter rules and HPAs: rollout gates and latency autoscaling on model-health's metrics."""
    from exporter.config import GatesConfig, load_config
    from exporter.gates import write_files

    config = load_config(config_path, GatesConfig) if config_path else GatesConfig()
    _print_written(write_files(out, config), "file")


def _print_written(paths: list[Path], what: str) -> None:
    from rich.table import Table

    table = Table(title=f"{len(paths)} {what}s written", title_justify="left")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for path in paths:
        table.add_row(str(path), f"{path.stat().st_size:,}")
    _stderr().print(table)


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items()) if not math.isnan(v))


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input ends in one ``error:`` line and exit status 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="model-health", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (UserError, ColumnError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if os.environ.get("MODEL_HEALTH_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"error: internal {type(exc).__name__}: {first} (set MODEL_HEALTH_DEBUG=1 for a traceback)", err=True
        )
        sys.exit(1)
