"""The ``model-health`` command line.

It starts at once: importing this module costs click and a few standard-library modules.
Each command imports its implementation inside its function, so ``model-health --help``
and ``model-health drift --help`` load no scipy, pyarrow, numpy, rich, pydantic,
prometheus_client or Kafka client (``tests/exporter/test_cli_imports.py`` holds it to
that). The long-running roles (aggregator, sidecar, relay, injector, node) share one
start-up, :func:`_run_role`: logging, config, signal handlers, then serve until a signal.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from exporter.errors import UserError

if TYPE_CHECKING:
    import threading

    from rich.console import Console

    from exporter.config.loading import Settings

T = TypeVar("T")
C = TypeVar("C", bound="Settings")  # a role's config model
# Above this many cells a comparison takes long enough that a bar beats silence.
PROGRESS_MIN_CELLS = 2_000_000
EXIT_USAGE = 2
EXIT_DRIFT = 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _stderr() -> Console:
    from rich.console import Console

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
        # Off the terminal a transient bar shows nothing, so rich is not even imported.
        self.enabled = cells >= PROGRESS_MIN_CELLS and sys.stderr.isatty()

    def __call__(self, items: Iterable[T], total: int, description: str) -> Iterable[T]:
        if not self.enabled:
            yield from items
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=_stderr(), transient=True) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)


@contextmanager
def _data_command() -> Iterator[None]:
    """Start-up economies for a one-shot data command (``drift``, ``reference build``).

    * One BLAS thread. These commands make only small BLAS calls (Durbin's matrix in
      :mod:`detectors.kolmogorov`, at most 115 square), yet OpenBLAS (numpy's, and scipy's
      own copy) starts a thread per core as it loads, and they spin: a sixth of a
      ``model-health drift``'s CPU time. Set only before numpy is loaded, only where the
      user has not chosen, and only while the command runs.
    * The cyclic garbage collector paused. The imports (numpy and pyarrow, and scipy.stats
      where an exact test needs it, a few hundred thousand objects) set off full collections
      that trace them all to find no garbage:
      the arrays and tables a command makes are freed by reference counting.
    """
    import gc

    blas = "OPENBLAS_NUM_THREADS"
    set_blas = "numpy" not in sys.modules and blas not in os.environ
    if set_blas:
        os.environ[blas] = "1"
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
        if set_blas:
            os.environ.pop(blas, None)


def _show_version(context: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``, as click's version_option prints it; the version is looked up only here."""
    if not value or context.resilient_parsing:
        return
    from exporter import __version__

    click.echo(f"model-health, version {__version__}")
    context.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
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
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Binary classifier: the score at or above which it predicts the positive class.",
)
@click.option(
    "--class-scores",
    multiple=True,
    help="Multiclass classifier: CLASS=COLUMN pairs, comma-separated, naming each class's score column "
    "(--prediction then holds the predicted class); enables label-free estimation.",
)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Profile file to write (Parquet).")
@click.option("--fine-bins", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--psi-bins", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--top-k", default=50, show_default=True, type=click.IntRange(min=1))
@_data_command()
def reference_build(
    data: Path,
    model: str,
    model_version: str,
    features: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction: str | None,
    label: str | None,
    trained_at: str | None,
    threshold: float,
    class_scores: tuple[str, ...],
    out: Path,
    fine_bins: int,
    psi_bins: int,
    top_k: int,
) -> None:
    """Build a reference profile from DATA (Parquet or CSV)."""
    import time

    from detectors.profile import ProfileSettings, build_profile
    from exporter.offline.tables import column_errors, read_table
    from exporter.profiles import save_profile

    trained = parse_timestamp(trained_at) if trained_at else None
    scores: dict[str, str] = {}
    for pair in _split_option(class_scores):
        name, _, column = pair.partition("=")
        if not name or not column:
            raise click.BadParameter(f"{pair!r} is not CLASS=COLUMN", param_hint="--class-scores")
        scores[name] = column
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
            threshold=threshold,
            class_scores=scores or None,
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
@click.option(
    "--alpha-model",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Family-wise false-alarm rate: the chance that any feature of a stationary data set is flagged "
    "(the aggregator's models[].thresholds.alpha_model).",
)
@_data_command()
def drift(
    reference_path: Path,
    current_path: Path,
    binning: str,
    output_format: str,
    features: tuple[str, ...],
    categorical: tuple[str, ...],
    fail_on_drift: bool,
    alpha_model: float,
) -> None:
    """Compare CURRENT data against a REFERENCE data set or profile."""
    from exporter.offline.drift import run_drift

    size = current_path.stat().st_size if current_path.is_file() else 0
    # About 8 bytes a cell: a cheap estimate before anything is read.
    if output_format == "html":  # the drift report page (exporter/report), on stdout
        from detectors.decision import DriftRule
        from exporter.report.offline import write_html_report

        rule = DriftRule(alpha_model=alpha_model)

        drifted = write_html_report(
            reference_path,
            current_path,
            binning=binning,  # type: ignore[arg-type]
            features=_split_option(features),
            categorical=_split_option(categorical),
            track=_Progress(size // 8),
            rule=rule,
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
        alpha_model=alpha_model,  # the rule is built once the inputs are read
    )
    if output_format == "json":
        import json

        click.echo(json.dumps(report.as_dict(), indent=2, allow_nan=False))
    else:
        from exporter.offline.report import print_report, report_console

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
    import json

    from exporter.demo.live import DemoOptions, LiveDemo
    from exporter.offline.report import report_console

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
    import tempfile
    import time

    import pyarrow.parquet as pq

    from detectors.profile import build_profile
    from exporter.demo.synthetic import drifted_columns, synthetic_table
    from exporter.offline.drift import run_drift
    from exporter.offline.report import print_report, report_console
    from exporter.offline.tables import read_table
    from exporter.profiles import save_profile

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


# --------------------------------------------------------------------------- the roles


def install_signal_handlers(stop: threading.Event, doing: str = "checkpointing and stopping") -> None:
    """SIGTERM and SIGINT set ``stop``; ``doing`` says in the log what the component does next."""
    import logging

    log = logging.getLogger(__name__)

    def handler(signum: int, frame: object) -> None:
        log.info("signal %d: %s", signum, doing)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run_role(
    config_path: Path,
    config_type: type[C],
    log_level: str,
    serve: Callable[[C, threading.Event], None],
    doing: str = "stopping",
    quiet: tuple[str, ...] = (),
) -> None:
    """What every long-running role does: logging, then its config (a bad file fails the
    start, naming the field), then SIGTERM/SIGINT handlers, then ``serve(config, stop)``
    until a signal sets ``stop``.

    ``doing`` is logged on a signal; ``quiet`` loggers (chatty clients) show warnings only.
    """
    import logging
    import threading

    from exporter.config import load_config

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(log_level)))
    config = load_config(config_path, config_type)
    stop = threading.Event()
    install_signal_handlers(stop, doing)
    serve(config, stop)


def _role_options(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--config FILE`` (required) and ``--log-level``, which every role takes."""

    config = click.option(
        "--config", "config_path", required=True, type=click.Path(path_type=Path), help=f"{what} YAML config."
    )
    log_level = click.option("--log-level", default="INFO", show_default=True, type=click.Choice(LOG_LEVELS))

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        return config(log_level(function))

    return decorate


@cli.command()
@_role_options("Aggregator")
def aggregator(config_path: Path, log_level: str) -> None:
    """Consume prediction logs from Kafka and serve drift metrics on /metrics."""
    from exporter.aggregator.service import serve
    from exporter.config import AggregatorConfig
    from exporter.pipeline.decode import BatchDecoder

    def run(config: AggregatorConfig, stop: threading.Event) -> None:
        serve(config, BatchDecoder(config.kafka.labels_topic, config.kafka.format), stop)

    # The Kafka client narrates every connection at INFO; its warnings are what matter.
    _run_role(config_path, AggregatorConfig, log_level, run, "checkpointing and stopping", ("kafka", "apscheduler"))


@cli.command()
@_role_options("Sidecar")
def sidecar(config_path: Path, log_level: str) -> None:
    """Take prediction logs over HTTP (KServe logger, native JSON), serve pod metrics, forward to Kafka."""
    from exporter.config import SidecarConfig
    from exporter.sidecar import serve

    _run_role(config_path, SidecarConfig, log_level, serve, "flushing the queue and stopping", ("kafka",))


@cli.command()
@_role_options("Injector")
def injector(config_path: Path, log_level: str) -> None:
    """Admission webhook (HTTPS, POST /mutate) that injects the model-health sidecar into model pods."""
    from exporter.config import InjectorConfig
    from exporter.injector.service import serve

    _run_role(config_path, InjectorConfig, log_level, serve)


@cli.command()
@_role_options("Relay")
def relay(config_path: Path, log_level: str) -> None:
    """Turn Alertmanager's retrain alerts (POST /v1/alertmanager) into signed retraining webhooks."""
    from exporter.config import RelayConfig
    from exporter.relay.service import serve

    def run(config: RelayConfig, stop: threading.Event) -> None:
        try:
            serve(config, stop)
        except UserError as exc:  # a secret file or the state directory: name the config it came from
            raise UserError(f"{config_path}: {exc}") from None

    _run_role(config_path, RelayConfig, log_level, run, "stopping; pending deliveries stay on disk")


@cli.command()
@_role_options("Node agent")
@click.option(
    "--fake-nvml",
    "fake_nvml",
    default=None,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Replay a recorded NVML capture (e.g. exporter/gpu/fixtures/h200) instead of the real library: demos without a GPU.",
)
def node(config_path: Path, log_level: str, fake_nvml: Path | None) -> None:
    """GPU node agent (DaemonSet): every GPU of the node, processes attributed to pods, on /metrics."""
    from exporter.config import NodeConfig
    from exporter.gpu.node import serve

    def run(config: NodeConfig, stop: threading.Event) -> None:
        nvml = None
        if fake_nvml is not None:
            from exporter.gpu.fake import load_fake

            try:
                nvml = load_fake(fake_nvml)
            except (OSError, ValueError, KeyError) as exc:  # json.JSONDecodeError is a ValueError
                raise UserError(f"--fake-nvml {fake_nvml}: not an NVML capture ({exc})") from None
        serve(config, stop, nvml=nvml)

    _run_role(config_path, NodeConfig, log_level, run)


# ------------------------------------------------------------------- the generators


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


def _is_column_error(exc: Exception) -> bool:
    """A :class:`detectors.columns.ColumnError`, without importing detectors (and numpy) to ask."""
    columns = sys.modules.get("detectors.columns")
    return columns is not None and isinstance(exc, columns.ColumnError)


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input ends in one ``error:`` line and exit status 2, never a traceback.

    Without ``argv`` this is the process's entry point (the console script, ``python -m
    exporter``): once the command is done, the objects it made are frozen out of the cyclic
    garbage collector, so the interpreter's shutdown does not trace them all once more
    (after scipy.stats, that pass took longer than the comparison itself).
    """
    try:
        _main(argv)
    finally:
        if argv is None:
            import gc

            gc.freeze()


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="model-health", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if _is_column_error(exc):
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        if os.environ.get("MODEL_HEALTH_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"error: internal {type(exc).__name__}: {first} (set MODEL_HEALTH_DEBUG=1 for a traceback)", err=True
        )
        sys.exit(1)
