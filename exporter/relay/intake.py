"""Turning an accepted notification into durable deliveries, before Alertmanager hears 200.

The store's admission transaction commits (to disk) before ``receive`` returns, and only then
does the HTTP layer answer 200: a relay killed at any later moment still has the delivery. If
the relay dies before committing, Alertmanager gets no 200 and sends the notification again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from exporter.config import RelayRetrainConfig
from exporter.relay.events import plan
from exporter.relay.payload import Notification
from exporter.relay.stats import RelayStats
from exporter.relay.store import RelayStore

log = logging.getLogger(__name__)


class Intake:
    def __init__(
        self,
        store: RelayStore,
        retrain: RelayRetrainConfig,
        stats: RelayStats,
        wake: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._retrain = retrain
        self._stats = stats
        self._wake = wake
        self._clock = clock

    def receive(self, notification: Notification) -> dict[str, Any]:
        """Admit ``notification``'s retraining alerts; the summary is the 200 response body."""
        retrain = self._retrain
        if notification.truncatedAlerts:
            log.warning(
                "notification %s lost %d alerts to the receiver's max_alerts; set max_alerts: 0 for the relay",
                notification.groupKey,
                notification.truncatedAlerts,
            )
        planned = plan(notification, retrain.alert_name, retrain.model_label, retrain.version_label)
        admission = self._store.admit(planned.candidates, notification, self._clock(), retrain.cooldown_seconds)
        self._stats.notification()
        skipped = planned.skipped + admission.skipped
        self._stats.skipped(skipped.items())
        if admission.deliveries:
            self._stats.refresh_pending(self._store.pending_count)
            self._wake()
        for delivery in admission.deliveries:
            event = delivery.event
            log.info(
                "retraining %s%s queued as %s: %s",
                event.model,
                f" {event.model_version}" if event.model_version else "",
                delivery.id,
                "; ".join(event.reasons),
            )
        for reason, count in sorted(admission.skipped.items()):
            log.info("notification %s: %d alert(s) skipped (%s)", notification.groupKey, count, reason)
        return {
            "deliveries": [
                {"id": d.id, "model": d.event.model, "model_version": d.event.model_version}
                for d in admission.deliveries
            ],
            "skipped": dict(sorted(skipped.items())),
        }
