"""What ``/readyz`` reports for the aggregator, in both modes.

- :class:`Readiness` — the current answer, written by the consuming threads and read by HTTP
  threads;
- :class:`BrokerWatch` — is the broker still there? Kafka clients hide a broker that went
  away: kafka-python's ``poll`` keeps returning nothing while it reconnects, so the consuming
  loop alone cannot tell "no traffic" from "no broker". The watch asks the broker for
  metadata (one small request, :func:`exporter.kafka.probe.probe`) at most every
  ``interval_s`` and logs each change once: when the broker stops answering, and when it
  answers again and for how long it was away. Plaintext listeners only, like the probe;
  ``check`` is the seam for others;
- :class:`AssignmentWatch` — does the consumer hold partitions (``kafka.mode: single``)? A
  single-mode aggregator is its group's only member and should hold every partition of its
  topics. A group join can nonetheless leave it with none and no error: kafka-python on
  tansu, after a member was killed, has sat in that state for minutes while ``poll`` kept
  returning nothing — indistinguishable from quiet traffic. An empty assignment that
  outlasts ``grace_s`` (longer than any ordinary rebalance) becomes a reason not to be
  ready, logged once each way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeAlias

from exporter.kafka.probe import BrokerAddress, probe

log = logging.getLogger(__name__)

Check: TypeAlias = Callable[[str, float], list[BrokerAddress]]
# An ordinary join or rebalance leaves a member without partitions for a few session
# timeouts at most (seconds here); half a minute without any is not one.
GRACE_SECONDS = 30.0


class Readiness:
    """What /readyz reports; written by the consuming thread, read by HTTP threads."""

    def __init__(self) -> None:
        self._state = (False, "starting")

    def set(self, ready: bool, why: str) -> None:
        self._state = (ready, why)

    def __call__(self) -> tuple[bool, str]:
        return self._state


class BrokerWatch:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        check: Check = probe,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._check = check
        self._clock = clock
        self._checked_at: float | None = None
        self._down_since: float | None = None
        self._why = ""

    @property
    def up(self) -> bool:
        return self._down_since is None

    def state(self, *, fresh: bool = False) -> tuple[bool, str]:
        """``(broker answers, why not)``, probing first if the last answer is older than the
        interval (or ``fresh`` is asked for: before a blocking call such as a commit)."""
        now = self._clock()
        if fresh or self._checked_at is None or now - self._checked_at >= self.interval_s:
            self._checked_at = now
            self._probe(now)
        return self.up, self._why

    def _probe(self, now: float) -> None:
        try:
            self._check(self.bootstrap_servers, self.timeout_s)
        except OSError as error:
            self._why = f"broker unreachable: {error or type(error).__name__}"
            if self._down_since is None:
                self._down_since = now
                log.warning(
                    "Kafka broker %s stopped answering (%s); not ready until it is back, state is kept",
                    self.bootstrap_servers,
                    error or type(error).__name__,
                )
            return
        if self._down_since is not None:
            log.info(
                "Kafka broker %s is back after %.1f s; consuming resumes",
                self.bootstrap_servers,
                now - self._down_since,
            )
            self._down_since = None
        self._why = ""


class AssignmentWatch:
    def __init__(self, grace_s: float = GRACE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._empty_since: float | None = None
        self._reported = False

    def check(self, partitions: int) -> str | None:
        """Why the consumer is not ready (held no partition for over ``grace_s``), else None.

        >>> now = [0.0]
        >>> watch = AssignmentWatch(grace_s=30.0, clock=lambda: now[0])
        >>> watch.check(0) is None  # just joined: not yet
        True
        >>> now[0] = 31.0
        >>> watch.check(0)
        'no partitions assigned for 31 s'
        >>> watch.check(4) is None
        True
        """
        now = self._clock()
        if partitions:
            if self._reported:
                log.info(
                    "partitions assigned again (%d) after %.0f s without", partitions, now - (self._empty_since or now)
                )
            self._empty_since, self._reported = None, False
            return None
        if self._empty_since is None:
            self._empty_since = now
        waited = now - self._empty_since
        if waited < self.grace_s:
            return None
        if not self._reported:
            log.warning(
                "the consumer has held no partitions for %.0f s: not ready until the group assigns some", waited
            )
            self._reported = True
        return f"no partitions assigned for {waited:.0f} s"
