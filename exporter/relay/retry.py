"""When to retry a delivery, and how long to wait: exponential backoff with full jitter.

The n-th retry waits ``uniform(0, min(max_backoff, base · 2ⁿ⁻¹))`` (AWS's "full jitter": many
relays retrying one recovering target spread out instead of arriving in waves), or the cap
itself with ``jitter: none``. A ``Retry-After`` from the target (seconds or an HTTP date, on
429 and 503 answers) sets a floor, up to ``max_retry_after_seconds``.

Answers sort into three outcomes: 2xx delivered; 408, 429 and 5xx worth retrying, as are
connection errors and timeouts; every other status (4xx: bad token, unknown repository, bad
pipeline id; 3xx: a redirect the relay will not follow with a signed body) fails at once,
since sending the same request again cannot succeed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from exporter.config import RelayRetryConfig

Outcome = Literal["delivered", "retry", "permanent"]
RETRYABLE_STATUSES = frozenset({408, 429})


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "delivered"
    if status in RETRYABLE_STATUSES or status >= 500:
        return "retry"
    return "permanent"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    jitter: Literal["full", "none"]
    max_retry_after_seconds: float

    @classmethod
    def from_config(cls, config: RelayRetryConfig) -> RetryPolicy:
        return cls(
            config.max_attempts,
            config.base_backoff_seconds,
            config.max_backoff_seconds,
            config.jitter,
            config.max_retry_after_seconds,
        )

    def backoff_cap(self, retry: int) -> float:
        """The ceiling before the ``retry``-th retry (1 for the first)."""
        # Capped exponent: 2**1000 would overflow a float long before the cap matters.
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(retry - 1, 64))

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        cap = self.backoff_cap(retry)
        wait = rng.uniform(0.0, cap) if self.jitter == "full" else cap
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_seconds))
        return wait
