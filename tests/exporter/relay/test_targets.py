"""Each target kind gets the request its API documents, signed, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.config import RelayTargetConfig
from exporter.relay.credentials import Credentials
from exporter.relay.events import RetrainEvent
from exporter.relay.store import Delivery
from exporter.relay.targets import GITHUB_PAYLOAD_MAX_CHARS, Target
from tests.exporter.relay.fake_target import FakeTarget
from tests.exporter.relay.notifications import alert, notification


@pytest.fixture
def fake(request: pytest.FixtureRequest, secret: str):
    target = FakeTarget(request.param, secret).start()
    yield target
    target.stop()


def _token(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


@pytest.mark.parametrize("fake", ["argo"], indirect=True)
def test_argo_events_webhook(start_relay, fake: FakeTarget, tmp_path: Path) -> None:
    relay = start_relay(
        fake,
        target={
            "kind": "argo",
            "url": fake.url,
            "argo": {"endpoint": "/retrain", "token_file": _token(tmp_path, "argo", "argo-auth")},
        },
    )
    (queued,) = relay.post(notification(alert("fraud", "7", reason="drift"))).json()["deliveries"]
    (request,) = fake.wait_for(1)
    assert request.path == "/retrain"
    assert request.headers["authorization"] == "Bearer argo-auth"  # the event source's authSecret
    assert request.headers["content-type"] == "application/json"
    assert request.verified and request.webhook_id == queued["id"]
    body = request.json
    assert {"model": "fraud", "model_version": "7", "reasons": ["drift"]}.items() <= body.items()


@pytest.mark.parametrize("fake", ["kubeflow"], indirect=True)
def test_kubeflow_pipelines_run(start_relay, fake: FakeTarget, tmp_path: Path) -> None:
    kubeflow = {
        "pipeline_id": "p-123",
        "pipeline_version_id": "v-456",
        "experiment_id": "e-789",
        "token_file": _token(tmp_path, "kfp", "kfp-sa-token"),
    }
    relay = start_relay(fake, target={"kind": "kubeflow", "url": fake.url + "/", "kubeflow": kubeflow})
    (queued,) = relay.post(
        notification(alert("fraud", "7", reason="drift"), alert("fraud", "7", reason="accuracy"))
    ).json()["deliveries"]
    (request,) = fake.wait_for(1)
    assert request.path == "/apis/v2beta1/runs"
    assert request.headers["authorization"] == "Bearer kfp-sa-token"
    assert request.verified and request.webhook_id == queued["id"]
    run = request.json
    assert run["display_name"] == f"retrain fraud 7 ({queued['id']})"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-123", "pipeline_version_id": "v-456"}
    assert run["experiment_id"] == "e-789"
    assert run["runtime_config"] == {
        "parameters": {"model": "fraud", "model_version": "7", "reason": "drift; accuracy"}
    }
    assert set(run) == {"display_name", "description", "pipeline_version_reference", "runtime_config", "experiment_id"}


@pytest.mark.parametrize("fake", ["kubeflow"], indirect=True)
def test_kubeflow_latest_version_and_no_experiment(start_relay, fake: FakeTarget) -> None:
    relay = start_relay(fake, target={"kind": "kubeflow", "url": fake.url, "kubeflow": {"pipeline_id": "p-1"}})
    relay.post(notification(alert("churn", None)))
    (request,) = fake.wait_for(1)
    run = request.json
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1"}
    assert "experiment_id" not in run and "authorization" not in request.headers
    assert run["runtime_config"]["parameters"]["model_version"] == ""


@pytest.mark.parametrize("fake", ["github"], indirect=True)
def test_github_repository_dispatch(start_relay, fake: FakeTarget, tmp_path: Path) -> None:
    github = {
        "repository": "acme/fraud-model",
        "token_file": _token(tmp_path, "gh", "ghp_example"),
        "event_type": "retrain",
    }
    relay = start_relay(fake, target={"kind": "github", "url": fake.url, "github": github})
    (queued,) = relay.post(notification(alert("fraud", "7", reason="drift"))).json()["deliveries"]
    (request,) = fake.wait_for(1)
    assert request.answered == 204  # GitHub's answer to a dispatch
    assert request.path == "/repos/acme/fraud-model/dispatches"
    headers = request.headers
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["authorization"] == "Bearer ghp_example"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("model-health-relay/")
    assert request.verified and request.webhook_id == queued["id"]
    body = request.json
    assert set(body) == {"event_type", "client_payload"} and body["event_type"] == "retrain"
    payload = body["client_payload"]
    assert len(payload) <= 10  # GitHub's limit on top-level keys
    assert (payload["model"], payload["model_version"], payload["reasons"]) == ("fraud", "7", ["drift"])
    assert payload["webhook_id"] == queued["id"]
    assert relay.metric("model_health_relay_deliveries_total", target="github", outcome="delivered") == 1


def _delivery(alert_count: int) -> Delivery:
    alerts = tuple(
        {
            "fingerprint": f"{i:016x}",
            "startsAt": "2026-11-28T10:00:00Z",
            "labels": {"model": "m", "pad": "x" * 200},
            "annotations": {},
            "generatorURL": "",
        }
        for i in range(alert_count)
    )
    event = RetrainEvent("m", "1", ("drift",), "2026-11-28T10:00:00Z", alerts)
    return Delivery("msg_1", event, "pending", 0, 1_800_000_000.0, 0.0)


def test_github_payload_stays_under_its_size_limit() -> None:
    config = RelayTargetConfig(kind="github", github={"repository": "o/r", "token_file": "/t"})
    target = Target(config, Credentials("t", None, "gh"))
    small = json.loads(target.request(_delivery(2), 1_800_000_000.0).body)["client_payload"]
    assert "labels" in small["alerts"][0]
    big = json.loads(target.request(_delivery(400), 1_800_000_000.0).body)["client_payload"]
    assert len(json.dumps(big)) <= GITHUB_PAYLOAD_MAX_CHARS
    assert big["alerts"][0] == {"fingerprint": "0000000000000000", "startsAt": "2026-11-28T10:00:00Z"}


def test_without_a_secret_the_id_and_timestamp_still_go_out() -> None:
    config = RelayTargetConfig(kind="github", github={"repository": "o/r", "token_file": "/t"})
    request = Target(config, Credentials("t", None, "gh")).request(_delivery(1), 1_800_000_000.7)
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["webhook-timestamp"] == "1800000000"
    assert "webhook-signature" not in request.headers
    assert request.url == "https://api.github.com/repos/o/r/dispatches"


def test_same_delivery_same_body_fresh_signature(secret: str) -> None:
    from standardwebhooks import Webhook

    config = RelayTargetConfig(kind="generic", url="http://x/hook", secret_file="/s")
    target = Target(config, Credentials("t", Webhook(secret), None))
    first = target.request(_delivery(1), 1_800_000_000.0)
    later = target.request(_delivery(1), 1_800_000_600.0)
    assert first.body == later.body and first.headers["webhook-id"] == later.headers["webhook-id"]
    assert first.headers["webhook-signature"] != later.headers["webhook-signature"]
    assert later.headers["webhook-timestamp"] == "1800000600"
