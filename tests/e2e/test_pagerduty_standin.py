"""The PagerDuty Events API v2 stand-in answers as PagerDuty documents: 202 for a valid event,
400 naming every problem for an invalid one, and it keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.pagerduty import PagerDutyStandIn

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyStandIn]:
    standin = PagerDutyStandIn(KEY).start()
    yield standin
    standin.stop()


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def trigger(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "group-1",
        "payload": {
            "summary": "fraud v7: 3 features drift",
            "source": "Alertmanager",
            "severity": "critical",
            "custom_details": {"model": "fraud"},
        },
        "links": [{"href": "https://rb.test/x.md", "text": "Runbook"}],
    }
    event.update(changes)
    return event


def test_a_valid_trigger_is_accepted_and_kept(pagerduty):
    status, answer = post(pagerduty.url, json.dumps(trigger()).encode())
    assert (status, answer) == (202, {"status": "success", "message": "Event processed", "dedup_key": "group-1"})
    assert pagerduty.events == [trigger()] and pagerduty.refused == []


def test_a_trigger_without_dedup_key_gets_one(pagerduty):
    event = trigger()
    del event["dedup_key"]
    status, answer = post(pagerduty.url, json.dumps(event).encode())
    assert status == 202 and len(answer["dedup_key"]) == 32


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (trigger(routing_key="short"), "'routing_key' must be a 32-character integration key"),
        (trigger(routing_key="f" * 32), "'routing_key' is not the key of this integration"),
        (trigger(event_action="page"), "'event_action' must be one of trigger, acknowledge, resolve"),
        (trigger(dedup_key="k" * 256), "'dedup_key' must be a string of at most 255 characters"),
        (trigger(event_action="resolve", dedup_key=None), "'dedup_key' is required for resolve"),
        (trigger(payload=None), "'payload' is required for trigger and must be an object"),
        (trigger(payload={"source": "a", "severity": "critical"}), "'payload.summary' is required"),
        (
            trigger(payload={"summary": "s" * 1025, "source": "a", "severity": "info"}),
            "'payload.summary' must be at most 1024 characters",
        ),
        (trigger(payload={"summary": "s", "severity": "info"}), "'payload.source' is required"),
        (
            trigger(payload={"summary": "s", "source": "a", "severity": "page"}),
            "'payload.severity' must be one of critical, error, warning, info",
        ),
        (trigger(links={"href": "x"}), "'links' must be a list"),
        ([], "Event object must be a JSON object"),
    ],
)
def test_an_invalid_event_gets_400_naming_the_problem(pagerduty, event, error):
    status, answer = post(pagerduty.url, json.dumps(event).encode())
    assert status == 400
    assert answer["status"] == "invalid event" and error in answer["errors"]
    assert pagerduty.events == [] and [r.errors for r in pagerduty.refused] == [answer["errors"]]
    # Still serving.
    assert post(pagerduty.url, json.dumps(trigger()).encode())[0] == 202


def test_bad_json_wrong_path_and_method(pagerduty):
    assert post(pagerduty.url, b"{nope")[0] == 400
    assert post(pagerduty.url.replace("/v2/enqueue", "/v1/enqueue"), b"{}")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(pagerduty.url, timeout=5)
    assert info.value.code == 405
