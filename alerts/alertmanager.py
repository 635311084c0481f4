"""The Alertmanager configuration: receivers, routing, grouping and inhibition.

Three receivers: a default one (an optional webhook), PagerDuty for the paged severities (the
routing key read from a file, never inlined), and the retraining relay for
``ModelHealthRetrainRecommended`` (a webhook with a bearer token read from a file). The relay
route comes first and does not continue, so a recommendation never pages.
"""

from __future__ import annotations

from typing import Any

from alerts.promql import any_of
from alerts.rules import INHIBITED_BY_ABSENCE, PREDICTIONS_ABSENT, RETRAIN
from exporter.config import AlertsConfig

DEFAULT_RECEIVER = "model-health-default"
PAGERDUTY_RECEIVER = "model-health-pagerduty"
RELAY_RECEIVER = "model-health-relay"


def _pagerduty(config: AlertsConfig) -> dict[str, Any]:
    pagerduty = config.alertmanager.pagerduty
    settings: dict[str, Any] = {
        "routing_key_file": pagerduty.routing_key_file,
        "send_resolved": True,
        # PagerDuty's own severities include critical, warning and info: pass ours through.
        "severity": "{{ .CommonLabels.severity }}",
        "description": "{{ .CommonAnnotations.summary }}",
        "details": {
            "description": "{{ .CommonAnnotations.description }}",
            "firing": "{{ .Alerts.Firing | len }}",
            "model": "{{ .CommonLabels.model }}",
            "model_version": "{{ .CommonLabels.model_version }}",
        },
        "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}],
    }
    if config.aggregator_url is not None:
        # The first alert's: a group may hold several windows of one model. Alertmanager
        # leaves out a link whose href renders empty (an alert without a report_url).
        settings["links"].append({"href": "{{ (index .Alerts 0).Annotations.report_url }}", "text": "Drift report"})
    if pagerduty.url:
        settings["url"] = pagerduty.url
    return {"name": PAGERDUTY_RECEIVER, "pagerduty_configs": [settings]}


def _relay(config: AlertsConfig) -> dict[str, Any]:
    relay = config.alertmanager.relay
    return {
        "name": RELAY_RECEIVER,
        "webhook_configs": [
            {
                "url": relay.url,
                "send_resolved": relay.send_resolved,
                "max_alerts": 0,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": relay.credentials_file}},
            }
        ],
    }


def _default(config: AlertsConfig) -> dict[str, Any]:
    url = config.alertmanager.default_webhook_url
    receiver: dict[str, Any] = {"name": DEFAULT_RECEIVER}
    if url:
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True}]
    return receiver


def render_alertmanager(config: AlertsConfig | None = None) -> dict[str, Any]:
    """``alertmanager.yaml`` as a mapping."""
    config = config or AlertsConfig()
    am = config.alertmanager
    routes: list[dict[str, Any]] = [
        {
            "receiver": RELAY_RECEIVER,
            "matchers": [f'alertname="{RETRAIN}"'],
            "group_by": ["alertname", "model", "model_version"],
            "repeat_interval": am.relay.repeat_interval,
            "continue": False,
        }
    ]
    receivers = [_default(config), _relay(config)]
    if am.pagerduty.severities:
        routes.append(
            {
                "receiver": PAGERDUTY_RECEIVER,
                "matchers": [f'severity=~"{any_of(am.pagerduty.severities)}"'],
                "continue": False,
            }
        )
        receivers.append(_pagerduty(config))
    return {
        "global": {"resolve_timeout": am.resolve_timeout},
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": list(am.group_by),
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": routes,
        },
        "receivers": receivers,
        "inhibit_rules": [
            {
                # No traffic: drift numbers describe an empty or stale window, and retraining
                # is moot until predictions flow again.
                "source_matchers": [f'alertname="{PREDICTIONS_ABSENT}"'],
                "target_matchers": [f'alertname=~"{any_of(INHIBITED_BY_ABSENCE)}"'],
                "equal": ["model", "model_version"],
            }
        ],
    }
