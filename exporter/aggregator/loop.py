"""The one poll loop: every consuming stage of the aggregator runs in it.

Single mode's aggregator and both scale-out stages are *stages*: they subscribe, handle one
poll at a time, may checkpoint, and close. :func:`run_poll_loop` keeps a stage inside
``poll`` continuously (a kafka-python consumer that stays out of it can lose a finished group
join), retries Kafka errors with exponential backoff (0.5 s doubling to 30 s, reset by a good
poll), checkpoints every ``checkpoint_seconds`` and once more at a clean stop, and tells the
caller after every poll whether the broker answers — the client itself keeps polling quietly
while the broker is away, so only a probe (:class:`~exporter.aggregator.readiness.BrokerWatch`)
tells, and a fresh one is taken before a checkpoint, whose group commit would block on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from exporter.aggregator.readiness import BrokerWatch
from exporter.kafka import Backoff, KafkaIOError

log = logging.getLogger(__name__)


def reconnect_backoff() -> Backoff:
    """How long to wait between tries to reach the broker."""
    return Backoff(initial_s=0.5, max_s=30.0)


class Stage(Protocol):
    def subscribe(self) -> None: ...

    def poll_once(self) -> int: ...

    def close(self) -> None: ...


def run_poll_loop(
    name: str,
    stage: Stage,
    stop: threading.Event,
    watch: BrokerWatch,
    *,
    on_poll: Callable[[bool, str], None],
    on_error: Callable[[str], None],
    checkpoint: Callable[[bool], None] | None = None,
    checkpoint_seconds: float = 0.0,
) -> None:
    """Poll ``stage`` until ``stop`` is set, then close it.

    ``on_poll(broker_up, why)`` runs after every poll that raised nothing, ``on_error(why)``
    after a Kafka error (before the backoff wait). ``checkpoint(commit)`` runs every
    ``checkpoint_seconds`` and at a clean stop; ``commit`` is False while the broker is away.
    """
    backoff = reconnect_backoff()
    delays = backoff.delays()
    try:
        stage.subscribe()
        last_checkpoint = time.monotonic()
        while not stop.is_set():
            try:
                stage.poll_once()
                due = checkpoint is not None and time.monotonic() - last_checkpoint >= checkpoint_seconds
                broker_up, why = watch.state(fresh=due)
                on_poll(broker_up, why)
                delays = backoff.delays()
                if checkpoint is not None and due:
                    checkpoint(broker_up)
                    last_checkpoint = time.monotonic()
            except KafkaIOError as error:
                delay = next(delays)
                on_error(str(error))
                log.warning("%s: Kafka error (%s); retrying in %.1fs", name, error, delay)
                stop.wait(delay)
        if checkpoint is not None:
            checkpoint(watch.up)
    finally:
        stage.close()
