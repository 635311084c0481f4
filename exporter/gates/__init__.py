"""Rollout gates and latency autoscaling as code: ``model-health gates --out DIR``.

Modules, in the order a gate is built:

- :mod:`~exporter.gates.queries` — the gates (one table: query, bound, meaning) and the latency query;
- :mod:`~exporter.gates.objects` — the metadata every generated object shares;
- :mod:`~exporter.gates.flagger` — Flagger ``MetricTemplate`` per gate and ``Canary`` per model;
- :mod:`~exporter.gates.argo` — the Argo Rollouts ``AnalysisTemplate``;
- :mod:`~exporter.gates.autoscaling` — KEDA ``ScaledObject``, prometheus-adapter rules and HPA per model;
- :mod:`~exporter.gates.files` — the files written, as deterministic YAML.

Every query runs against the recording rules of ``model-health alerts`` (load both).
"""

from exporter.gates.files import render_files, write_files
from exporter.gates.queries import BY_KEY, GATES, Gate

__all__ = ["BY_KEY", "GATES", "Gate", "render_files", "write_files"]
