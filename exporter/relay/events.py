"""From a notification to retraining candidates: which alerts matter, grouped by model.

Pure: no clock, no state. A firing alert with the configured ``alertname`` and a model label
is a candidate; resolved alerts, other alert names and alerts without a model label are
counted as skipped. Candidates of one model (and version) are grouped, so a notification
carrying several alerts for one model asks for one retraining, with every alert's reason.
Whether a candidate is new, a repeat or inside the cooldown is the store's decision, made
atomically with recording it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.relay.payload import Alert, Notification, parse_time

# Annotations, then labels, that say why retraining is recommended, most specific first.
_REASON_KEYS = ("reason", "summary", "description")


@dataclass(frozen=True)
class ModelKey:
    """What the cooldown is per: a model, and its version when the alert names one."""

    model: str
    model_version: str | None

    def text(self) -> str:
        return self.model if self.model_version is None else f"{self.model}@{self.model_version}"


@dataclass(frozen=True)
class Candidate:
    """The firing alerts of one model in one notification."""

    key: ModelKey
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class Plan:
    candidates: tuple[Candidate, ...]
    skipped: Counter[str] = field(default_factory=Counter)


def plan(notification: Notification, alert_name: str, model_label: str, version_label: str) -> Plan:
    """Split ``notification``'s alerts into per-model candidates and skip counts."""
    skipped: Counter[str] = Counter()
    grouped: dict[ModelKey, list[Alert]] = {}
    for alert in notification.alerts:
        if alert.status != "firing":
            skipped["resolved"] += 1
        elif alert.alertname != alert_name:
            skipped["other_alert"] += 1
        elif not alert.labels.get(model_label):
            skipped["no_model"] += 1
        else:
            key = ModelKey(alert.labels[model_label], alert.labels.get(version_label) or None)
            grouped.setdefault(key, []).append(alert)
    candidates = tuple(Candidate(key, tuple(alerts)) for key, alerts in grouped.items())
    return Plan(candidates, skipped)


def alert_reason(alert: Alert) -> str:
    """Why this alert recommends retraining, in its own words."""
    for key in _REASON_KEYS:
        text = alert.annotations.get(key) or alert.labels.get(key)
        if text:
            return text
    return alert.alertname


@dataclass(frozen=True)
class RetrainEvent:
    """What one delivery asks for. Stored as JSON with the pending delivery, so a retry sends
    exactly what the first attempt sent."""

    model: str
    model_version: str | None
    reasons: tuple[str, ...]
    starts_at: str
    alerts: tuple[Mapping[str, Any], ...]
    external_url: str = ""
    group_key: str = ""

    @classmethod
    def from_alerts(cls, key: ModelKey, alerts: tuple[Alert, ...], notification: Notification) -> RetrainEvent:
        reasons = tuple(dict.fromkeys(alert_reason(alert) for alert in alerts))
        return cls(
            model=key.model,
            model_version=key.model_version,
            reasons=reasons,
            starts_at=min(alerts, key=lambda alert: parse_time(alert.startsAt)).startsAt,
            alerts=tuple(
                {
                    "fingerprint": alert.fingerprint,
                    "startsAt": alert.startsAt,
                    "labels": dict(alert.labels),
                    "annotations": dict(alert.annotations),
                    "generatorURL": alert.generatorURL,
                }
                for alert in alerts
            ),
            external_url=notification.externalURL,
            group_key=notification.groupKey,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "reasons": list(self.reasons),
            "starts_at": self.starts_at,
            "alerts": [dict(alert) for alert in self.alerts],
            "external_url": self.external_url,
            "group_key": self.group_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainEvent:
        return cls(
            model=data["model"],
            model_version=data["model_version"],
            reasons=tuple(data["reasons"]),
            starts_at=data["starts_at"],
            alerts=tuple(data["alerts"]),
            external_url=data.get("external_url", ""),
            group_key=data.get("group_key", ""),
        )
