"""The injector over real HTTPS: AdmissionReviews in, JSONPatches out, validated Pods.

A CA and server certificate are made per test module; the server is the real one
(``exporter.injector.service.serve``) on a loopback port. Every patch is applied with
``jsonpatch`` and the resulting Pod validated against the Kubernetes 1.29 and 1.33 schemas
(``kubernetes-validate``, strict: unknown fields fail).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from exporter.config import InjectorConfig
from exporter.injector import names, service
from tests.exporter.injector import reviews
from tests.support.tls import CertificateAuthority, Issued, make_ca, write_pair

KUBERNETES_VERSIONS = ("1.29", "1.33")
DNS_NAMES = ["model-health-injector.monitoring.svc", "localhost"]
TIMEOUT_S = 30.0


@dataclass
class Running:
    url: str
    client: httpx.Client
    ca: CertificateAuthority
    tls_dir: Path
    port: int

    def mutate(self, document: Any, scope: str | None = None) -> httpx.Response:
        suffix = f"?scope={scope}" if scope else ""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.client.post(
            f"{self.url}/mutate{suffix}", content=body, headers={"Content-Type": "application/json"}
        )

    def served_serial(self) -> int:
        context = ssl.create_default_context(cadata=self.ca.pem.decode())
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number


def _start(tmp_path: Path, ca: CertificateAuthority, issued: Issued, **overrides: Any) -> Iterator[Running]:
    cert_file, key_file = write_pair(issued, tmp_path / "tls")
    config = InjectorConfig.model_validate(
        {
            "http": {"host": "127.0.0.1", "port": 1, "connection_timeout_seconds": 2.0},
            "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
            "sidecar": {
                "image": "registry.example.com/model-health:0.1.0",
                "kafka": {"bootstrap_servers": "kafka.data:9092"},
            },
            **overrides,
        }
    )
    # Port 0 (any free port) is not a valid config value; the server takes it directly.
    config = config.model_copy(update={"http": config.http.model_copy(update={"port": 0})})
    stop = threading.Event()
    ready: list[int] = []
    thread = threading.Thread(target=service.serve, args=(config, stop, ready.append), daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not ready and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    assert ready, "injector did not start"
    context = ssl.create_default_context(cadata=ca.pem.decode())
    with httpx.Client(verify=context, timeout=TIMEOUT_S) as client:
        yield Running(f"https://127.0.0.1:{ready[0]}", client, ca, tmp_path / "tls", ready[0])
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def injector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ca = make_ca()
    yield from _start(tmp_path_factory.mktemp("injector"), ca, ca.issue(DNS_NAMES))


def _patch_of(response: httpx.Response, uid: str) -> list[dict[str, Any]] | None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["apiVersion"] == "admission.k8s.io/v1" and document["kind"] == "AdmissionReview"
    answer = document["response"]
    assert answer["uid"] == uid and answer["allowed"] is True
    if "patch" not in answer:
        assert "patchType" not in answer
        return None
    assert answer["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(answer["patch"]))


def _validate_pod(pod: dict[str, Any]) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize(
    ("make_pod", "namespace", "model", "version"),
    [
        (reviews.kserve_predictor, "models", "fraud", "7"),
        (reviews.seldon_v1_model, "seldon", "income", "v2"),
        (reviews.plain_fastapi, "ml", "churn", "3"),
    ],
    ids=["kserve-predictor", "seldon-v1", "plain"],
)
def test_injects_and_is_idempotent(
    injector: Running, make_pod: Callable[[], dict], namespace: str, model: str, version: str
) -> None:
    pod = make_pod()
    _validate_pod(pod)  # the fixture itself is a valid Pod
    request = reviews.review(pod, namespace)
    patch = _patch_of(injector.mutate(request), request["request"]["uid"])
    assert patch, "expected a patch"
    assert all(op["op"] in ("add", "replace") for op in patch)
    patched = jsonpatch.apply_patch(pod, patch)
    _validate_pod(patched)
    (sidecar,) = [c for c in patched["spec"]["initContainers"] if c["name"] == names.CONTAINER]
    assert sidecar["restartPolicy"] == "Always"
    config = yaml.safe_load(patched["metadata"]["annotations"][names.SIDECAR_CONFIG])
    assert config["model"] == {"name": model, "version": version, "namespace": namespace}
    # The model's own containers are exactly as they were.
    assert patched["spec"]["containers"] == pod["spec"]["containers"]

    again = reviews.review(patched, namespace)  # reinvocation: the pod as the webhook left it
    assert _patch_of(injector.mutate(again), again["request"]["uid"]) is None


@pytest.mark.parametrize(
    ("make_pod", "scope"),
    [(reviews.opted_out, "namespace"), (reviews.already_injected, None), (reviews.unlabelled, None)],
    ids=["opted-out", "already-injected", "not-opted-in"],
)
def test_no_patch(injector: Running, make_pod: Callable[[], dict], scope: str | None) -> None:
    request = reviews.review(make_pod(), "ml")
    assert _patch_of(injector.mutate(request, scope), request["request"]["uid"]) is None


def test_namespace_scope_opts_pods_in(injector: Running) -> None:
    pod = reviews.unlabelled()
    request = reviews.review(pod, "ml")
    patch = _patch_of(injector.mutate(request, "namespace"), request["request"]["uid"])
    assert patch
    _validate_pod(jsonpatch.apply_patch(pod, patch))


def test_refusal_is_allowed_with_a_warning(injector: Running) -> None:
    pod = reviews.plain_fastapi()
    pod["metadata"]["labels"] = {}
    request = reviews.review(pod, "ml")
    response = injector.mutate(request)
    assert _patch_of(response, request["request"]["uid"]) is None
    (warning,) = response.json()["response"]["warnings"]
    assert "not injected" in warning and "model-health.io/model" in warning


def test_other_operations_and_kinds_pass_untouched(injector: Running) -> None:
    update = reviews.review(reviews.plain_fastapi(), "ml", operation="UPDATE")
    assert _patch_of(injector.mutate(update), update["request"]["uid"]) is None
    deployment = reviews.review(reviews.plain_fastapi(), "ml")
    deployment["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert _patch_of(injector.mutate(deployment), deployment["request"]["uid"]) is None


def _malformed() -> list[tuple[str, bytes, str | None]]:
    good = reviews.review(reviews.plain_fastapi(), "ml")
    no_uid = json.loads(json.dumps(good))
    del no_uid["request"]["uid"]
    beta = json.loads(json.dumps(good))
    beta["apiVersion"] = "admission.k8s.io/v1beta1"
    no_object = json.loads(json.dumps(good))
    no_object["request"]["object"] = None
    return [
        ("not-json", b"{not json", "not JSON"),
        ("not-utf8", b"\xff\xfe\x00", "not JSON"),
        ("array", b"[1, 2]", "not a JSON object"),
        (
            "no-request",
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            "request",
        ),
        ("no-uid", json.dumps(no_uid).encode(), "request.uid"),
        ("v1beta1", json.dumps(beta).encode(), "apiVersion"),
        ("pod-without-object", json.dumps(no_object).encode(), "request.object"),
        ("empty", b"", "not JSON"),
    ]


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in _malformed()], ids=[n for n, _, _ in _malformed()])
def test_malformed_reviews_get_400(injector: Running, body: bytes, message: str) -> None:
    response = injector.mutate(body)
    assert response.status_code == 400
    assert message in response.text


def test_http_misuse_gets_4xx(injector: Running) -> None:
    assert injector.client.get(f"{injector.url}/mutate").status_code == 405
    assert injector.client.post(f"{injector.url}/mutate?scope=cluster", content=b"{}").status_code == 400
    too_big = b" " * (8 * 1024 * 1024 + 1)
    assert injector.client.post(f"{injector.url}/mutate", content=too_big).status_code == 413
    assert injector.client.get(f"{injector.url}/nope").status_code == 404


def test_bad_clients_do_not_stop_it(injector: Running) -> None:
    # A client that speaks plain HTTP to the TLS port, and one that connects and says nothing.
    with socket.create_connection(("127.0.0.1", injector.port), timeout=5) as plain:
        plain.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        try:
            plain.recv(100)
        except OSError:
            pass
    idle = socket.create_connection(("127.0.0.1", injector.port), timeout=5)
    try:
        request = reviews.review(reviews.plain_fastapi(), "ml")
        assert _patch_of(injector.mutate(request), request["request"]["uid"])
    finally:
        idle.close()
    assert injector.client.get(f"{injector.url}/healthz").status_code == 200


def test_concurrent_admissions(injector: Running) -> None:
    makers = [reviews.kserve_predictor, reviews.seldon_v1_model, reviews.plain_fastapi, reviews.opted_out]

    def one(i: int) -> tuple[int, bool]:
        if i % 5 == 4:
            return injector.mutate(b"{broken").status_code, False
        request = reviews.review(makers[i % len(makers)](), "ml")
        response = injector.mutate(request)
        return response.status_code, _patch_of(response, request["request"]["uid"]) is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(60)))
    for i, (status, patched) in enumerate(results):
        if i % 5 == 4:
            assert status == 400
        else:
            assert status == 200 and patched == (makers[i % len(makers)] is not reviews.opted_out)


def test_internal_error_admits_unpatched(injector: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("planner exploded")

    monkeypatch.setattr(service, "plan", broken)
    request = reviews.review(reviews.kserve_predictor(), "models")
    response = injector.mutate(request)
    assert _patch_of(response, request["request"]["uid"]) is None
    (warning,) = response.json()["response"]["warnings"]
    assert "internal error" in warning and "planner exploded" in warning


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_metrics_and_health(injector: Running) -> None:
    request = reviews.review(reviews.plain_fastapi(), "ml")
    injector.mutate(request)
    injector.mutate(b"nope")
    metrics = injector.client.get(f"{injector.url}/metrics").text
    admissions = _samples(metrics, "model_health_injector_admissions_total")
    assert admissions['model_health_injector_admissions_total{outcome="injected"}'] >= 1
    assert admissions['model_health_injector_admissions_total{outcome="malformed"}'] >= 1
    assert set(admissions) == {f'model_health_injector_admissions_total{{outcome="{o}"}}' for o in service.OUTCOMES}
    (expiry,) = _samples(metrics, "model_health_injector_certificate_expiry_timestamp_seconds").values()
    assert expiry > time.time() + 20 * 86400
    assert 'model_health_build_info{version="' in metrics
    assert injector.client.get(f"{injector.url}/healthz").status_code == 200
    assert injector.client.get(f"{injector.url}/readyz").text == "serving\n"


def _poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_certificate_rotation(tmp_path: Path) -> None:
    ca = make_ca()
    first = ca.issue(DNS_NAMES)
    for running in _start(tmp_path, ca, first):
        assert running.served_serial() == first.serial
        second = ca.issue(DNS_NAMES, days=60)
        write_pair(second, running.tls_dir)
        _poll(lambda: running.served_serial() == second.serial, "the rotated certificate")  # noqa: B023 - polled at once
        request = reviews.review(reviews.plain_fastapi(), "ml")
        assert _patch_of(running.mutate(request), request["request"]["uid"])

        # A half-done rotation (new certificate, old key) keeps the working pair serving.
        third = ca.issue(DNS_NAMES)
        write_pair(third, running.tls_dir, key_pem=second.key_pem)
        for _ in range(3):
            assert running.served_serial() == second.serial
        metrics = running.client.get(f"{running.url}/metrics").text
        reloads = _samples(metrics, "model_health_injector_certificate_reloads_total")
        assert reloads['model_health_injector_certificate_reloads_total{result="loaded"}'] == 1
        assert reloads['model_health_injector_certificate_reloads_total{result="failed"}'] == 1
        (expiry,) = _samples(metrics, "model_health_injector_certificate_expiry_timestamp_seconds").values()
        assert abs(expiry - second.not_after.timestamp()) < 1

        write_pair(third, running.tls_dir)  # the key arrives
        _poll(lambda: running.served_serial() == third.serial, "the completed rotation")  # noqa: B023 - polled at once
