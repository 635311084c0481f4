"""Does the consumer hold partitions? For /readyz, in ``kafka.mode: single``.

A single-mode aggregator is its group's only member and should hold every partition of
its topics. A group join can nonetheless leave it with none and no error: kafka-python on
tansu, after a member was killed, has sat in that state for minutes while ``poll`` kept
returning nothing — indistinguishable, from the loop, from quiet traffic, and /readyz said
``consuming`` all along. :class:`AssignmentWatch` turns an empty assignment that outlasts
``grace_s`` (longer than any ordinary rebalance) into a reason not to be ready, and logs
the change once each way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# An ordinary join or rebalance leaves a member without partitions for a few session
# timeouts at most (seconds here); half a minute without any is not one.
GRACE_SECONDS = 30.0


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
