"""The drift report: why a feature fired, as one self-contained page.

Modules, in the order data flows through them:

- :mod:`~exporter.report.offline` — the offline command's way in: two files (or a
  profile and a file) → the drift statistics of ``drift --format json`` plus the
  summaries they came from;
- :mod:`~exporter.report.live` — the aggregator's way in: one window of the current
  snapshot (the summaries evaluation compared, kept in it by reference) → the same
  ``ReportData``, and which window a request names;
- :mod:`~exporter.report.data` — the pure data model: ``ReportData`` with one
  ``FeatureReport`` per column (bars regrouped from fine histograms or category counts,
  statistics, thresholds, what crossed them), built from (reference summary, current
  summary, ``ColumnDrift``) — the streaming path, live or offline — or from raw values in
  Evidently mode; ``as_dict()`` is the drift JSON plus extra keys;
- :mod:`~exporter.report.html` — ``render_html(report) -> str``: the page, with uPlot
  and the page's script and style (``static/``) inlined;
- :mod:`~exporter.report.routes` — the aggregator's ``GET /report``,
  ``/report/<model>`` and ``/api/v1/drift``: read-only, off the state lock, one render
  per snapshot, stepping aside for scrapes.
"""
