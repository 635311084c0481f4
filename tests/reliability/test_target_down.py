"""A retraining target that is down for minutes (seconds in the short run).

Real parts: the relay (its real ``serve``, in this process) and its SQLite state; the target
is the faithful fake of ``tests/exporter/relay/fake_target.py``, not listening at all while
it is down (connections refused), then back on the same port.

- **Retries outlast the outage** (``max_attempts`` large, backoff capped): the alerts
  posted while the target is down are delivered once it is back — each exactly once, with
  its original ``webhook-id`` — within one capped backoff of its return.
- **The outage outlasts the retries** (``max_attempts`` 3): each delivery fails and is
  counted as ``failed``; its alert and cooldown are released, so when Alertmanager repeats
  the still-firing alert after the target is back, it is delivered, exactly once.
"""

from __future__ import annotations

import time

from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification
from tests.reliability.harness import poll_until

MODELS = ("fraud", "churn", "credit")


def _delivered_once(target: FakeTarget) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for request in target.delivered():
        ids.setdefault(request.json["model"], set()).add(request.webhook_id)
    return ids


def test_retries_outlast_a_long_outage_and_deliver_exactly_once(scale, secret, start_relay, figures):
    down_seconds = scale.pick(4.0, min(180.0, max(scale.seconds / 2, 60.0)))
    max_backoff = scale.pick(1.0, 15.0)
    target = FakeTarget("generic", secret)  # down: nothing listens on its port yet
    relay = start_relay(
        target,
        target={"retry": {"max_attempts": 100_000, "base_backoff_seconds": 0.2, "max_backoff_seconds": max_backoff}},
    )
    started = time.monotonic()
    told = {}
    for model in MODELS:
        (delivery,) = relay.post(notification(alert(model, "3", fingerprint=f"down-{model}"))).json()["deliveries"]
        told[model] = delivery["id"]
    time.sleep(max(down_seconds - (time.monotonic() - started), 0))
    retries_while_down = relay.metric("model_health_relay_retries_total", target="generic")
    target.start()
    back = time.monotonic()
    try:
        poll_until(
            lambda: set(_delivered_once(target)) == set(MODELS),
            max_backoff * 2 + 60,
            "every delivery once the target is back",
        )
        after = time.monotonic() - back
        poll_until(
            lambda: relay.metric("model_health_relay_deliveries_pending", target="generic") == 0, 30, "nothing pending"
        )
        time.sleep(1.0)
        ids = _delivered_once(target)
        figures.record(
            sent=len(MODELS),
            counted=len(ids),
            faults=int(retries_while_down),
            lost=len(set(MODELS) - set(ids)),
            duplicated=sum(len(v) - 1 for v in ids.values()),
            down_s=round(down_seconds, 1),
            retries_while_down=int(retries_while_down),
            max_backoff_s=max_backoff,
            delivered_after_back_s=round(after, 2),
            delivered=int(relay.metric("model_health_relay_deliveries_total", target="generic", outcome="delivered")),
            failed=int(relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed")),
        )
        assert {m: v for m, v in ids.items()} == {m: {told[m]} for m in MODELS}
        assert len(target.delivered()) == len(MODELS)
        assert retries_while_down >= len(MODELS)
        assert relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed") == 0
    finally:
        target.stop()


def test_an_outage_longer_than_the_retries_fails_then_the_repeat_delivers(scale, secret, start_relay, figures):
    down_seconds = scale.pick(3.0, min(120.0, max(scale.seconds / 3, 30.0)))
    target = FakeTarget("generic", secret)
    relay = start_relay(
        target, target={"retry": {"max_attempts": 3, "base_backoff_seconds": 0.1, "max_backoff_seconds": 0.3}}
    )
    started = time.monotonic()
    notifications = {model: notification(alert(model, "3", fingerprint=f"long-{model}")) for model in MODELS}
    for payload in notifications.values():
        assert len(relay.post(payload).json()["deliveries"]) == 1
    poll_until(
        lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed") == len(MODELS),
        60,
        "every delivery to fail after its 3 attempts",
    )
    # Still down: Alertmanager's repeats are taken again (the failure released the alerts)…
    repeats_while_down = 0
    while time.monotonic() - started < down_seconds:
        time.sleep(min(1.0, down_seconds))
        for payload in notifications.values():
            repeats_while_down += len(relay.post(payload).json()["deliveries"])
    target.start()
    try:
        # …and once it is back, the next repeat is delivered, exactly once per alert.
        poll_until(
            lambda: relay.metric("model_health_relay_deliveries_pending", target="generic") == 0,
            30,
            "the last attempts to finish",
        )
        for payload in notifications.values():
            relay.post(payload)
        poll_until(lambda: set(_delivered_once(target)) == set(MODELS), 60, "the repeats delivered")
        time.sleep(1.0)
        for payload in notifications.values():  # later repeats: duplicates now
            assert relay.post(payload).json()["skipped"] == {"duplicate": 1}
        ids = _delivered_once(target)
        failed = relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed")
        figures.record(
            sent=len(MODELS),
            counted=len(ids),
            faults=int(failed),
            lost=len(set(MODELS) - set(ids)),
            duplicated=sum(len(v) - 1 for v in ids.values()),
            down_s=round(down_seconds, 1),
            failed_deliveries=int(failed),
            retried_repeats_while_down=repeats_while_down,
            attempts_refused=len(target.received) - len(target.delivered()),
        )
        assert all(len(v) == 1 for v in ids.values())
        assert len(target.delivered()) == len(MODELS)
        assert failed >= len(MODELS)
    finally:
        target.stop()
