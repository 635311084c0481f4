"""Prometheus recording and alert rules and Alertmanager config, generated as code."""
