"""The sidecar beside each inference pod: HTTP ingest → serving metrics → Kafka.

Modules, in the order a record meets them:

- :mod:`~exporter.sidecar.ingest` — ``POST /`` (KServe payload-logger CloudEvents, paired
  by ``ce-id``) and ``POST /v1/predictions`` (native JSON / NDJSON); HTTP status rules;
- :mod:`~exporter.sidecar.serving` — the pod's serving metrics and their collector;
- :mod:`~exporter.sidecar.queue` — the bounded buffer to Kafka (503 when full);
- :mod:`~exporter.sidecar.forwarder` — the thread that talks to Kafka, through a stage:
  :mod:`~exporter.sidecar.batches` (records mode: NDJSON or Arrow IPC batches, via
  :mod:`~exporter.sidecar.encoding`) or :mod:`~exporter.sidecar.summaries` (edge mode: one
  :mod:`exporter.pipeline.summary_wire` summary per time bucket);
- :mod:`~exporter.sidecar.service` — wiring, GPU collector, start and stop.
"""

from exporter.sidecar.service import Sidecar, serve

__all__ = ["Sidecar", "serve"]
