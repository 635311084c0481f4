"""The relay's counters, and the collector that renders them from the catalogue at scrape time.

Counts live in one lock-guarded object written by the HTTP and delivery threads; a scrape
copies them under the lock and builds families from that copy, touching neither the database
nor the network. Every known label value starts at zero so ``rate()`` and ``increase()`` see
the first event.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric

from exporter.exposition import CatalogueCollector

REJECT_REASONS = ("unauthorized", "method", "too_large", "bad_body", "bad_json", "bad_payload")
SKIP_REASONS = ("resolved", "other_alert", "no_model", "duplicate", "cooldown")
OUTCOMES = ("delivered", "failed")


@dataclass(frozen=True)
class RelayCounts:
    notifications: int
    rejected: dict[str, int]
    skipped: dict[str, int]
    deliveries: dict[tuple[str, str], int]
    retries: dict[str, int]
    pending: int


class RelayStats:
    """Thread-safe counts for one target kind."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._notifications = 0
        self._rejected: Counter[str] = Counter({reason: 0 for reason in REJECT_REASONS})
        self._skipped: Counter[str] = Counter({reason: 0 for reason in SKIP_REASONS})
        self._deliveries: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
        self._retries = 0
        self._pending = 0

    def notification(self) -> None:
        with self._lock:
            self._notifications += 1

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def skipped(self, counts: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            for reason, count in counts:
                self._skipped[reason] += count

    def finished(self, outcome: str) -> None:
        with self._lock:
            self._deliveries[outcome] += 1

    def retry(self) -> None:
        with self._lock:
            self._retries += 1

    def refresh_pending(self, count: Callable[[], int]) -> None:
        """Set the pending gauge from ``count()``, read under the lock: the intake and the
        worker both refresh it, and the one that reads last must also be the one that writes."""
        with self._lock:
            self._pending = count()

    def counts(self) -> RelayCounts:
        with self._lock:
            return RelayCounts(
                self._notifications,
                dict(self._rejected),
                dict(self._skipped),
                {(self.target, outcome): count for outcome, count in self._deliveries.items()},
                {self.target: self._retries},
                self._pending,
            )


class RelayCollector(CatalogueCollector):
    """Yields the relay's families from ``RelayStats`` (beside the role's build_info collector)."""

    METRICS = (
        "model_health_relay_notifications_total",
        "model_health_relay_requests_rejected_total",
        "model_health_relay_skipped_total",
        "model_health_relay_deliveries_total",
        "model_health_relay_retries_total",
        "model_health_relay_deliveries_pending",
    )

    def __init__(self, stats: RelayStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        counts = self._stats.counts()
        out = self.families()
        out.add("model_health_relay_notifications_total", [], counts.notifications)
        for reason, count in sorted(counts.rejected.items()):
            out.add("model_health_relay_requests_rejected_total", [reason], count)
        for reason, count in sorted(counts.skipped.items()):
            out.add("model_health_relay_skipped_total", [reason], count)
        for (target, outcome), count in sorted(counts.deliveries.items()):
            out.add("model_health_relay_deliveries_total", [target, outcome], count)
        for target, count in counts.retries.items():
            out.add("model_health_relay_retries_total", [target], count)
        out.add("model_health_relay_deliveries_pending", [self._stats.target], counts.pending)
        yield from out
