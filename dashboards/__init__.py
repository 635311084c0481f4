"""Grafana dashboards as code, generated from the metric catalogue."""
