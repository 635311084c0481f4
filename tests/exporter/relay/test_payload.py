"""Alertmanager's webhook payload: what parses, and what a refusal says."""

from __future__ import annotations

import json

import pytest

from exporter.relay.events import alert_reason, plan
from exporter.relay.payload import PayloadError, parse_notification
from tests.exporter.relay.notifications import alert, notification


def test_parses_a_notification_and_keeps_startsat_text() -> None:
    parsed = parse_notification(json.dumps(notification(alert("fraud", "7", fingerprint="ab"))).encode())
    (first,) = parsed.alerts
    assert parsed.version == "4" and parsed.status == "firing"
    assert first.startsAt == "2026-11-28T10:00:00.123456789Z"  # nanoseconds, as Alertmanager writes
    assert (first.fingerprint, first.alertname, first.labels["model"]) == (
        "ab",
        "ModelHealthRetrainRecommended",
        "fraud",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "bad_json"),
        (b"null", "bad_payload"),
        (b'"4"', "bad_payload"),
        (b'{"version": 4}', "bad_payload"),
        (b'{"version": "4"}', "bad_payload"),
    ],
)
def test_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_notification(body)
    assert info.value.reason == reason


def test_many_errors_are_summarised() -> None:
    bad = {"version": "4", "status": "firing", "alerts": [{"status": "x"}] * 4}
    with pytest.raises(PayloadError, match=r"and \d+ more"):
        parse_notification(json.dumps(bad).encode())


def test_plan_groups_by_model_key_and_counts_the_rest() -> None:
    parsed = parse_notification(
        json.dumps(
            notification(
                alert("fraud", "7"),
                alert("fraud", "7"),
                alert("fraud", None),
                alert("fraud", "7", status="resolved"),
                alert("x", "1", name="Other"),
                alert(None, None),
            )
        ).encode()
    )
    planned = plan(parsed, "ModelHealthRetrainRecommended", "model", "model_version")
    assert [(c.key.text(), len(c.alerts)) for c in planned.candidates] == [("fraud@7", 2), ("fraud", 1)]
    assert planned.skipped == {"resolved": 1, "other_alert": 1, "no_model": 1}


def test_configurable_model_labels() -> None:
    parsed = parse_notification(
        json.dumps(notification(alert(None, None, inference_service="fraud", revision="3"))).encode()
    )
    (candidate,) = plan(parsed, "ModelHealthRetrainRecommended", "inference_service", "revision").candidates
    assert candidate.key.text() == "fraud@3"


def test_reason_prefers_the_reason_annotation() -> None:
    parsed = parse_notification(json.dumps(notification(alert())).encode())
    (first,) = parsed.alerts
    assert alert_reason(first) == "feature drift on 4 of 12 features (1h window)"  # summary
    with_reason = first.model_copy(update={"annotations": {"reason": "psi", "summary": "s"}})
    assert alert_reason(with_reason) == "psi"
    bare = first.model_copy(update={"annotations": {}})
    assert alert_reason(bare) == "ModelHealthRetrainRecommended"
