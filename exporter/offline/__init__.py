"""The offline commands' helpers: ``model-health reference build`` and ``model-health drift``.

- :mod:`~exporter.offline.tables` — Parquet and CSV files read with one-line errors;
- :mod:`~exporter.offline.drift` — the offline comparison of two tables or a profile and a table;
- :mod:`~exporter.offline.report` — the drift table printed to a terminal.
"""
