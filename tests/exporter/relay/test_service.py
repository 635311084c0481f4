"""The relay end to end over real HTTP: Alertmanager's notifications in, signed requests out."""

from __future__ import annotations

from tests.exporter.relay.conftest import Clock
from tests.exporter.relay.fake_target import FakeTarget, wait_until
from tests.exporter.relay.notifications import alert, notification

SIX_HOURS = 6 * 3600


def test_one_signed_request_per_cooldown_when_alertmanager_repeats(
    start_relay, target: FakeTarget, clock: Clock
) -> None:
    relay = start_relay(target)
    firing = notification(alert("fraud", "7", fingerprint="aa11", reason="PSI 0.31 on amount"))
    first = relay.post(firing)
    assert first.status_code == 200
    (queued,) = first.json()["deliveries"]
    # Alertmanager re-sends the same group every group_interval / repeat_interval.
    for _ in range(4):
        again = relay.post(firing)
        assert again.status_code == 200 and again.json() == {"deliveries": [], "skipped": {"duplicate": 1}}
    (request,) = target.wait_for(1)
    assert request.verified is True
    assert request.webhook_id == queued["id"]
    assert request.path == "/hooks/retrain"
    body = request.json
    assert (body["model"], body["model_version"]) == ("fraud", "7")
    assert body["reasons"] == ["PSI 0.31 on amount"]
    assert body["startsAt"] == "2026-11-28T10:00:00.123456789Z"
    assert [a["fingerprint"] for a in body["alerts"]] == ["aa11"]
    assert body["type"] == "model_health.retrain_recommended" and body["id"] == queued["id"]

    # A new alert for the same model inside the cooldown asks for nothing.
    other = notification(alert("fraud", "7", fingerprint="bb22", starts_at="2026-11-28T12:00:00Z"))
    assert relay.post(other).json() == {"deliveries": [], "skipped": {"cooldown": 1}}
    wait_until(lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="delivered") == 1)
    assert relay.metric("model_health_relay_skipped_total", reason="duplicate") == 4
    assert relay.metric("model_health_relay_skipped_total", reason="cooldown") == 1
    assert relay.metric("model_health_relay_notifications_total") == 6

    # Once the cooldown is over, the alert that is still firing counts.
    clock.advance(SIX_HOURS + 1)
    (second,) = relay.post(other).json()["deliveries"]
    requests = target.wait_for(2)
    assert [r.webhook_id for r in requests] == [queued["id"], second["id"]]
    assert all(r.verified for r in requests)
    assert len(target.received) == 2


def test_models_and_versions_are_independent(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    answer = relay.post(notification(alert("fraud", "7"), alert("fraud", "8"), alert("churn", None)))
    assert sorted((d["model"], d["model_version"]) for d in answer.json()["deliveries"]) == [
        ("churn", None),
        ("fraud", "7"),
        ("fraud", "8"),
    ]
    # fraud 7 in cooldown does not hold back churn's next alert... and churn's cooldown is its own.
    assert relay.post(notification(alert("fraud", "7"))).json()["skipped"] == {"cooldown": 1}
    assert relay.post(notification(alert("credit", "1"))).json()["deliveries"][0]["model"] == "credit"
    requests = target.wait_for(4)
    assert sorted((r.json["model"], r.json["model_version"]) for r in requests) == [
        ("churn", None),
        ("credit", "1"),
        ("fraud", "7"),
        ("fraud", "8"),
    ]
    assert len({r.webhook_id for r in requests}) == 4


def test_alerts_of_one_model_in_one_notification_make_one_request(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    answer = relay.post(
        notification(
            alert("fraud", "7", reason="feature drift", starts_at="2026-11-28T10:05:00Z"),
            alert("fraud", "7", reason="accuracy 0.71 below reference 0.84", starts_at="2026-11-28T10:00:00.5Z"),
        )
    )
    assert len(answer.json()["deliveries"]) == 1
    (request,) = target.wait_for(1)
    assert request.json["reasons"] == ["feature drift", "accuracy 0.71 below reference 0.84"]
    assert request.json["startsAt"] == "2026-11-28T10:00:00.5Z"  # the earliest, compared as times
    assert len(request.json["alerts"]) == 2


def test_resolved_other_and_unlabelled_alerts_are_acknowledged_and_counted(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    answer = relay.post(
        notification(
            alert("fraud", "7", status="resolved"),
            alert("fraud", "7", name="ModelHealthFeatureDrift"),
            alert(None, None),
        )
    )
    assert answer.status_code == 200
    assert answer.json() == {"deliveries": [], "skipped": {"no_model": 1, "other_alert": 1, "resolved": 1}}
    for reason in ("resolved", "other_alert", "no_model"):
        assert relay.metric("model_health_relay_skipped_total", reason=reason) == 1
    assert target.received == []


def test_configured_alert_name(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target, retrain={"alert_name": "RetrainNow"})
    skipped = relay.post(notification(alert("fraud", "7")))
    assert skipped.json()["skipped"] == {"other_alert": 1}
    assert len(relay.post(notification(alert("fraud", "7", name="RetrainNow"))).json()["deliveries"]) == 1
    target.wait_for(1)


def test_target_failing_then_recovering_gets_the_same_webhook_id(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    target.fail_next(2, status=503)
    (queued,) = relay.post(notification(alert())).json()["deliveries"]
    wait_until(lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="delivered") == 1)
    requests = target.received
    assert [r.answered for r in requests] == [503, 503, 200]
    assert {r.webhook_id for r in requests} == {queued["id"]}
    assert len({r.body for r in requests}) == 1  # the same bytes every time
    assert all(r.verified for r in requests)
    assert relay.metric("model_health_relay_retries_total", target="generic") == 2
    assert relay.metric("model_health_relay_deliveries_pending", target="generic") == 0


def test_target_down_is_retried_then_counted_as_failed(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)  # FAST_RETRY: 4 attempts
    target.stop()
    firing = notification(alert(fingerprint="cc33"))
    assert relay.post(firing).status_code == 200
    wait_until(lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed") == 1)
    assert relay.metric("model_health_relay_retries_total", target="generic") == 3
    assert relay.metric("model_health_relay_deliveries_pending", target="generic") == 0
    # A failed delivery lets go of its alert: Alertmanager's next repeat tries again.
    target.start()
    assert len(relay.post(firing).json()["deliveries"]) == 1
    (request,) = target.wait_for(1)
    assert request.verified


def test_retry_after_is_honoured(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    target.fail_next(1, status=429, retry_after="1")
    relay.post(notification(alert()))
    first, second = target.wait_for(2, accepted=False)
    assert (first.answered, second.answered) == (429, 200)
    assert second.at - first.at >= 0.9  # the backoff alone would be at most 0.05 s


def test_client_errors_fail_at_once_but_408_429_and_5xx_are_retried(start_relay, target: FakeTarget) -> None:
    relay = start_relay(target)
    for status, attempts in ((401, 1), (404, 1), (422, 1), (408, 4), (500, 4)):
        target.always(status)
        before = len(target.received)
        failed = relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed")
        relay.post(notification(alert(f"model-{status}")))
        wait_until(
            lambda expected=failed + 1: (
                relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed") == expected
            )
        )
        assert len(target.received) - before == attempts, status


def test_receiver_verifies_the_signature(start_relay) -> None:
    # Same target, relay signing with another secret: the receiver refuses it, the relay
    # records a permanent failure. Proof that the fake's verification is not a formality.
    other = FakeTarget("generic", "whsec_" + "QUJD" * 8).start()
    try:
        relay = start_relay(other)
        relay.post(notification(alert()))
        wait_until(lambda: relay.metric("model_health_relay_deliveries_total", target="generic", outcome="failed") == 1)
        (request,) = other.received
        assert request.verified is False and request.answered == 400
    finally:
        other.stop()
