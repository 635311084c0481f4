"""Alertmanager webhook notifications (payload version 4) as Alertmanager 0.25 sends them."""

from __future__ import annotations

import itertools
from typing import Any

RETRAIN = "ModelHealthRetrainRecommended"
_COUNTER = itertools.count(1)


def alert(
    model: str | None = "fraud",
    version: str | None = "7",
    *,
    name: str = RETRAIN,
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-28T10:00:00.123456789Z",
    reason: str = "feature drift on 4 of 12 features (1h window)",
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": "warning", **labels}
    if model is not None:
        all_labels["model"] = model
    if version is not None:
        all_labels["model_version"] = version
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": reason, "description": f"Retraining recommended: {reason}."},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-28T11:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=model_health_drifted_features_ratio",
        "fingerprint": fingerprint or f"{next(_COUNTER):016x}",
    }


def notification(*alerts: dict[str, Any], receiver: str = "model-health-relay") -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="%s"}' % RETRAIN,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": RETRAIN},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
