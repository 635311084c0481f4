"""Standard Webhooks headers for one delivery attempt, signed by the ``standardwebhooks`` library.

``webhook-id`` is the delivery's id and never changes between attempts, so a receiver can
drop a retry it already processed. ``webhook-timestamp`` is the attempt's own time (receivers
refuse timestamps more than five minutes off, and a retry may come much later), and the
signature covers ``id.timestamp.body``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from standardwebhooks import Webhook


def webhook_headers(webhook: Webhook | None, msg_id: str, body: str, now: float) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and, with a secret, ``webhook-signature``."""
    seconds = math.floor(now)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(seconds)}
    if webhook is not None:
        headers["webhook-signature"] = webhook.sign(msg_id, datetime.fromtimestamp(seconds, tz=UTC), body)
    return headers
