"""I/O and runtime of model-health-exporter: every role, over shared layers.

Packages, in the order a prediction meets them:

- :mod:`~exporter.sidecar` — beside each inference pod: HTTP ingest, serving metrics, records or
  edge summaries to Kafka; :mod:`~exporter.gpu` — the NVML collector (in the sidecar or the node agent);
- :mod:`~exporter.kafka` — the Kafka clients behind one protocol, dead letters, the embedded broker;
- :mod:`~exporter.decoders` — wire formats in (one table of them), decoded Arrow tables out;
- :mod:`~exporter.pipeline` — the streaming core: fold, windows, label join, evaluation, snapshot;
- :mod:`~exporter.aggregator` — single mode and scale-out, running the pipeline against Kafka;
- :mod:`~exporter.report` — the drift report page, offline and live; :mod:`~exporter.offline` —
  ``reference build`` and ``drift``;
- :mod:`~exporter.httpd` — the small HTTP server every role serves;
- :mod:`~exporter.relay` — Alertmanager → signed retraining webhooks; :mod:`~exporter.injector` —
  the admission webhook that injects the sidecar; :mod:`~exporter.gates` — rollout gates and
  autoscaling as code; :mod:`~exporter.demo` — the whole loop on one machine.

Cross-cutting modules at this level: :mod:`~exporter.cli`, :mod:`~exporter.config`,
:mod:`~exporter.catalogue` (every metric), :mod:`~exporter.exposition` (catalogue → Prometheus
families), :mod:`~exporter.records` (the decoded-table contract), :mod:`~exporter.errors`,
:mod:`~exporter.profiles`, :mod:`~exporter.generated` (writing what the generator commands render).
"""


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importlib.metadata costs tens of
    # milliseconds, which every ``model-health`` command would pay at start-up.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("model-health-exporter")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
