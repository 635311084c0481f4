"""Is the broker still there? A probe now and then from the consuming loop, for /readyz.

Kafka clients hide a broker that went away: kafka-python's ``poll`` keeps returning
nothing while it reconnects, so the consuming loop alone cannot tell "no traffic" from
"no broker". :class:`BrokerWatch` asks the broker for metadata (one small request, see
:func:`exporter.kafka.probe.probe`) at most every ``interval_s``, and logs each change
once: when the broker stops answering, and when it answers again and for how long it
was away. Plaintext listeners only, like the probe; ``check`` is the seam for others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from exporter.kafka.probe import BrokerAddress, probe

log = logging.getLogger(__name__)

Check = Callable[[str, float], list[BrokerAddress]]


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
