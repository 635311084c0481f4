"""The aggregator: prediction logs from Kafka → windows → drift → ``/metrics``.

Modules, in the order data meets them:

- :mod:`~exporter.aggregator.service` — ``model-health aggregator``: profiles, MLflow,
  HTTP, connecting with backoff, the evaluation schedule, and the switch between the two modes;
- :mod:`~exporter.aggregator.inputs` — the topics read, the consumer settings, the models and profiles;
- :mod:`~exporter.aggregator.loop` — the one poll loop every consuming stage runs in (backoff,
  checkpoint cadence, broker probe);
- :mod:`~exporter.aggregator.single` — single mode: one process consumes every partition
  and runs the shared pipeline (:mod:`exporter.pipeline`) over each poll;
- :mod:`~exporter.aggregator.scaleout` — scale-out mode: the same pipeline split into two
  stages joined by the summaries topic;
- :mod:`~exporter.aggregator.checkpoint` — the atomic Parquet checkpoint of state and offsets;
- :mod:`~exporter.aggregator.readiness` — what ``/readyz`` reports (broker and assignment watches);
- :mod:`~exporter.aggregator.trained_times` — trained times from an MLflow registry;
- :mod:`~exporter.aggregator.collector` — the snapshot rendered at scrape time; the same
  snapshot's drift report is served by :mod:`exporter.report.routes`.
"""
