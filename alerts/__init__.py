"""Prometheus recording and alert rules and Alertmanager config, generated as code.

Pure functions of the metric catalogue and ``exporter.config.AlertsConfig``:

- ``render_rules(config)`` — the rules file (``groups``), also the PrometheusRule's ``spec``;
- ``render_prometheus_rule(config)`` — the ``monitoring.coreos.com/v1`` PrometheusRule;
- ``render_alertmanager(config)`` — ``alertmanager.yaml``;
- ``render_files(config)`` / ``write_files(out, config)`` — the three files as written;
- ``metric_names(expr)`` — the series a PromQL expression reads.
"""

from alerts.alertmanager import render_alertmanager
from alerts.manifests import dump_yaml, render_files, render_prometheus_rule, write_files
from alerts.promql import PROMETHEUS_SERIES, metric_names
from alerts.rules import (
    ALERT_NAMES,
    alert_rules,
    recording_rule_names,
    recording_rules,
    render_rules,
    report_url,
    runbook_url,
)

__all__ = [
    "ALERT_NAMES",
    "PROMETHEUS_SERIES",
    "alert_rules",
    "dump_yaml",
    "metric_names",
    "recording_rule_names",
    "recording_rules",
    "render_alertmanager",
    "render_files",
    "render_prometheus_rule",
    "render_rules",
    "report_url",
    "runbook_url",
    "write_files",
]
