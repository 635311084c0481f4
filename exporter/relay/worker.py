"""The delivery loop: sends due deliveries, retries with backoff, records every outcome.

One scheduler thread picks deliveries whose next attempt is due from the store and hands them
to a small pool (``target.concurrency``), so one slow model's target does not hold up the
others. An attempt never sleeps: a retry is a new ``next_attempt_at`` in the store, which also
makes the schedule survive a restart. Each finished attempt updates the store before the next
is picked, so a delivery is in flight at most once.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from exporter.relay.retry import RetryPolicy, classify, parse_retry_after
from exporter.relay.sender import Response, TransportError, send
from exporter.relay.stats import RelayStats
from exporter.relay.store import Delivery, RelayStore
from exporter.relay.targets import OutboundRequest, Target

log = logging.getLogger(__name__)

# Longest the scheduler sleeps without a reason to wake: bounds how late housekeeping runs.
IDLE_WAIT_SECONDS = 5.0
# After an unexpected error (the state database failing), pause before that delivery again.
ERROR_PAUSE_SECONDS = 5.0
MAINTENANCE_INTERVAL_SECONDS = 600.0

Send = Callable[[OutboundRequest, float, float, "ssl.SSLContext | None"], Response]


class DeliveryWorker:
    def __init__(
        self,
        store: RelayStore,
        target: Target,
        policy: RetryPolicy,
        stats: RelayStats,
        *,
        connect_timeout: float,
        read_timeout: float,
        concurrency: int = 4,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        maintenance: Callable[[float], None] | None = None,
        sender: Send = send,
    ) -> None:
        self._store = store
        self._target = target
        self._policy = policy
        self._stats = stats
        self._timeouts = (connect_timeout, read_timeout)
        self._concurrency = concurrency
        self._ssl = ssl_context
        self._clock = clock
        self._rng = rng or random.Random()
        self._maintenance = maintenance
        self._send = sender
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="relay-scheduler", daemon=True)

    def start(self) -> DeliveryWorker:
        self._stats.refresh_pending(self._store.pending_count)
        self._thread.start()
        return self

    def wake(self) -> None:
        """New deliveries were admitted: look now rather than at the next timeout."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop picking deliveries; attempts in flight finish and are recorded."""
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        last_maintenance = float("-inf")
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="relay-delivery") as pool:
            while not self._stop.is_set():
                self._wake.clear()
                now = self._clock()
                try:
                    timeout = self._dispatch(pool, now)
                    if self._maintenance is not None and now - last_maintenance >= MAINTENANCE_INTERVAL_SECONDS:
                        last_maintenance = now
                        self._maintenance(now)
                except Exception:  # noqa: BLE001 - the loop must outlive a failing disk
                    log.exception("relay scheduler: cannot read the state database; retrying")
                    timeout = ERROR_PAUSE_SECONDS
                self._wake.wait(timeout)

    def _dispatch(self, pool: ThreadPoolExecutor, now: float) -> float:
        """Submit due deliveries; return how long to sleep before looking again."""
        with self._lock:
            busy = set(self._inflight)
        free = self._concurrency - len(busy)
        if free > 0:
            for delivery in self._store.due(now, busy, free):
                with self._lock:
                    self._inflight.add(delivery.id)
                    busy.add(delivery.id)
                pool.submit(self._attempt, delivery)
        if len(busy) >= self._concurrency:
            return IDLE_WAIT_SECONDS  # a finishing attempt wakes the loop
        next_at = self._store.next_attempt_at(busy)
        if next_at is None:
            return IDLE_WAIT_SECONDS
        return min(IDLE_WAIT_SECONDS, max(0.0, next_at - now))

    def _attempt(self, delivery: Delivery) -> None:
        try:
            self._attempt_once(delivery)
        except Exception:  # noqa: BLE001 - keep the delivery pending and the worker alive
            log.exception("delivery %s: unexpected error; it stays pending", delivery.id)
            self._stop.wait(ERROR_PAUSE_SECONDS)
        finally:
            with self._lock:
                self._inflight.discard(delivery.id)
            self._wake.set()

    def _attempt_once(self, delivery: Delivery) -> None:
        attempt = delivery.attempts + 1
        if delivery.attempts:
            self._stats.retry()
        event = delivery.event
        what = f"delivery {delivery.id} ({event.model}{' ' + event.model_version if event.model_version else ''})"
        retry_after: float | None = None
        try:
            request = self._target.request(delivery, self._clock())
            response = self._send(request, *self._timeouts, self._ssl)
        except TransportError as error:
            outcome, problem = "retry", str(error)
        else:
            outcome = classify(response.status)
            problem = f"HTTP {response.status}" + (f": {response.excerpt}" if response.excerpt else "")
            if outcome == "retry":
                retry_after = parse_retry_after(response.retry_after, self._clock())
        now = self._clock()
        kind = self._target.kind
        if outcome == "delivered":
            self._store.finish(delivery.id, "delivered", attempt, now)
            self._stats.finished("delivered")
            log.info("%s: delivered to %s target on attempt %d", what, kind, attempt)
        elif outcome == "permanent" or attempt >= self._policy.max_attempts:
            self._store.finish(delivery.id, "failed", attempt, now, problem)
            self._stats.finished("failed")
            why = "refused" if outcome == "permanent" else f"gave up after {attempt} attempts"
            log.error("%s: %s target %s: %s", what, kind, why, problem)
        else:
            delay = self._policy.delay(attempt, self._rng, retry_after)
            self._store.reschedule(delivery.id, attempt, now + delay, problem)
            log.warning("%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, problem, delay)
        self._stats.refresh_pending(self._store.pending_count)
