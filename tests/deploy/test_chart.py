"""The Helm chart, rendered by real helm and checked against Kubernetes schemas and our own code.

- ``helm lint`` and ``helm template`` for the defaults and every ``ci/*-values.yaml``;
- core kinds through ``kubernetes-validate --strict`` for Kubernetes 1.29 and 1.33; CRD kinds
  (ServiceMonitor, PodMonitor, PrometheusRule, Certificate, Issuer), which it has no schema
  for, are listed explicitly and checked structurally here;
- selectors against labels, ports against container ports, security contexts, the webhook's
  routing (a label-selector evaluation over namespaces and pods);
- every component ConfigMap loaded by the component's own config model, the PrometheusRule
  equal to ``alerts`` output, the chart's generated files equal to a fresh generation.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from alerts import render_rules
from exporter.config import (
    AggregatorConfig,
    AggregatorHttpConfig,
    AlertsConfig,
    InjectorConfig,
    NodeConfig,
    RelayConfig,
    ScrapeJobsConfig,
    load_config,
)
from exporter.errors import UserError
from tests.deploy.chart import (
    CHART,
    CI_VALUES,
    CRD_KINDS,
    NAMESPACE,
    Rendered,
    component_of,
    matches,
    pod_specs,
    render,
    render_fails,
    render_notes,
)
from tests.support.helm import helm

KUBERNETES_VERSIONS = ("1.29", "1.33")
CORE_KINDS = frozenset(
    {
        "ConfigMap",
        "DaemonSet",
        "Deployment",
        "MutatingWebhookConfiguration",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    }
)
CONFIG_MODELS = {
    "aggregator": ("aggregator.yaml", AggregatorConfig),
    "relay": ("relay.yaml", RelayConfig),
    "injector": ("injector.yaml", InjectorConfig),
    "node-agent": ("node.yaml", NodeConfig),
}


@pytest.fixture(scope="module")
def renders() -> dict[str, Rendered]:
    found = {"(defaults)": render()}
    for path in CI_VALUES:
        found[path.name] = render(values=path)
    return found


@pytest.fixture(scope="module")
def full(renders: dict[str, Rendered]) -> Rendered:
    return renders["full-values.yaml"]


@pytest.fixture
def no_model_health_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """For what reads this process's environment by design: the CLI and models constructed directly.

    Config files load with ``environ={}`` instead: as the components load them, without this
    process's overrides.
    """
    for key in [key for key in os.environ if key.startswith("MODEL_HEALTH_")]:
        monkeypatch.delenv(key)


def test_ci_values_cover_the_required_cases() -> None:
    names = {path.name for path in CI_VALUES}
    assert {
        "default-values.yaml",
        "cert-manager-values.yaml",
        "gpu-agent-values.yaml",
        "plain-sidecar-values.yaml",
        "relay-values.yaml",
    } <= names


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    result = helm(*args)
    assert "0 chart(s) failed" in result.stdout


def test_only_known_kinds(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        kinds = {doc["kind"] for doc in rendered.docs}
        assert kinds <= CORE_KINDS | CRD_KINDS, (
            f"{rendered.values_file}: unchecked kinds {kinds - CORE_KINDS - CRD_KINDS}"
        )


def _write_core(renders: dict[str, Rendered], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for rendered in renders.values():
        core = [doc for doc in rendered.docs if doc["kind"] not in CRD_KINDS]
        path = directory / f"{rendered.values_file.strip('()')}.yaml"
        path.write_text(yaml.safe_dump_all(core, sort_keys=False))
        files.append(path)
    return files


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict(renders: dict[str, Rendered], version: str, tmp_path: Path) -> None:
    files = _write_core(renders, tmp_path)
    command = [str(Path(sys.executable).with_name("kubernetes-validate")), "--strict", "-k", version, *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = sum(1 for r in renders.values() for doc in r.docs if doc["kind"] not in CRD_KINDS)
    assert result.stdout.count("passed for resource") == expected
    assert "ERROR" not in result.stdout and "WARN" not in result.stdout


def test_strict_validation_would_catch_a_typo(full: Rendered, tmp_path: Path) -> None:
    deployment = dict(full.one("Deployment", "aggregator"))
    deployment["spec"] = {**deployment["spec"], "replica": 3}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(deployment))
    command = [str(Path(sys.executable).with_name("kubernetes-validate")), "--strict", "-k", "1.29", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "replica" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Labels, selectors, ports.


def test_workload_selectors_match_their_pods(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        for workload, template in pod_specs(rendered):
            labels = template["metadata"]["labels"]
            assert matches(workload["spec"]["selector"], labels), workload["metadata"]["name"]
            # Selectors must stay valid across upgrades: no version or chart labels in them.
            assert set(workload["spec"]["selector"]["matchLabels"]) == {
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/component",
            }


def test_services_select_exactly_their_component(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        for service in rendered.of_kind("Service"):
            selected = [
                w
                for w, t in pod_specs(rendered)
                if matches({"matchLabels": service["spec"]["selector"]}, t["metadata"]["labels"])
            ]
            assert len(selected) == 1, service["metadata"]["name"]
            (workload,) = selected
            ports = {p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports


def test_pdbs_and_network_policies_select_a_workload(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        for kind in ("PodDisruptionBudget", "NetworkPolicy"):
            for doc in rendered.of_kind(kind):
                selector = doc["spec"]["selector" if kind == "PodDisruptionBudget" else "podSelector"]
                selected = [w for w, t in pod_specs(rendered) if matches(selector, t["metadata"]["labels"])]
                assert len(selected) == 1, doc["metadata"]["name"]
                if kind == "NetworkPolicy":
                    container_ports = {
                        p["containerPort"]
                        for c in selected[0]["spec"]["template"]["spec"]["containers"]
                        for p in c["ports"]
                    }
                    for rule in doc["spec"]["ingress"]:
                        assert {p["port"] for p in rule["ports"]} <= container_ports


def test_service_accounts_exist_and_carry_no_token(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        accounts = {sa["metadata"]["name"]: sa for sa in rendered.of_kind("ServiceAccount")}
        for _workload, template in pod_specs(rendered):
            name = template["spec"]["serviceAccountName"]
            assert name in accounts and accounts[name]["automountServiceAccountToken"] is False
            assert template["spec"]["automountServiceAccountToken"] is False
        # Minimal RBAC: no component needs the Kubernetes API, so there is none.
        assert not [
            doc for doc in rendered.docs if doc["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
        ]


# ---------------------------------------------------------------------------------------------
# Security.


def test_security_contexts(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        for workload, template in pod_specs(rendered):
            spec = template["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert not spec.get("hostNetwork") and not spec.get("hostIPC")
            assert bool(spec.get("hostPID")) == (component_of(workload) == "node-agent")
            for container in spec["containers"] + spec.get("initContainers", []):
                context = container["securityContext"]
                assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
                assert context["readOnlyRootFilesystem"] is True
                assert context["allowPrivilegeEscalation"] is False
                assert context["privileged"] is False
                assert context["capabilities"] == {"drop": ["ALL"]}
                assert "resources" in container and container["resources"]["requests"]
                assert {"livenessProbe", "readinessProbe"} <= set(container)
                # A read-only root needs a writable /tmp.
                assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}


def test_image_is_one_for_all_components(full: Rendered) -> None:
    images = {c["image"] for _, t in pod_specs(full) for c in t["spec"]["containers"]}
    assert images == {"registry.example.com/ml/model-health-exporter:0.1.0-rc1"}
    injector = yaml.safe_load(full.one("ConfigMap", "injector")["data"]["injector.yaml"])
    assert injector["sidecar"]["image"] == "registry.example.com/ml/model-health-exporter:0.1.0-rc1"


# ---------------------------------------------------------------------------------------------
# The webhook.


def _webhooks(rendered: Rendered) -> dict[str, dict[str, Any]]:
    configuration = rendered.one("MutatingWebhookConfiguration")
    return {hook["name"]: hook for hook in configuration["webhooks"]}


def _routed(hooks: dict[str, dict[str, Any]], namespace: dict[str, str], pod: dict[str, str]) -> list[str]:
    """Paths of the webhooks the API server would call for a pod CREATE."""
    return [
        hook["clientConfig"]["service"]["path"]
        for hook in hooks.values()
        if matches(hook["namespaceSelector"], namespace) and matches(hook["objectSelector"], pod)
    ]


def _ns(name: str, **labels: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name, **labels}


OPT_IN = {"model-health.io/inject": "true"}
OPT_OUT = {"model-health.io/inject": "false"}


@pytest.mark.parametrize(
    ("namespace", "pod", "label_mode", "annotation_mode"),
    [
        (_ns("kube-system", **OPT_IN), OPT_IN, [], []),
        (_ns(NAMESPACE, **OPT_IN), OPT_IN, [], []),
        (_ns("models"), OPT_IN, ["/mutate"], ["/mutate"]),
        (_ns("models"), {}, [], ["/mutate"]),
        (_ns("models"), OPT_OUT, [], []),
        (_ns("ml", **OPT_IN), {}, ["/mutate?scope=namespace"], ["/mutate", "/mutate?scope=namespace"]),
        (_ns("ml", **OPT_IN), OPT_OUT, [], []),
        (_ns("ml", **OPT_IN), OPT_IN, ["/mutate"], ["/mutate"]),
    ],
)
def test_webhook_routing(
    renders: dict[str, Rendered],
    namespace: dict[str, str],
    pod: dict[str, str],
    label_mode: list[str],
    annotation_mode: list[str],
) -> None:
    assert _routed(_webhooks(renders["(defaults)"]), namespace, pod) == label_mode
    assert _routed(_webhooks(renders["plain-sidecar-values.yaml"]), namespace, pod) == annotation_mode


def test_webhook_excludes_extra_namespaces(full: Rendered) -> None:
    hooks = _webhooks(full)
    for name in ("kube-system", NAMESPACE, "istio-system", "cert-manager"):
        assert _routed(hooks, _ns(name, **OPT_IN), OPT_IN) == []
    assert _routed(hooks, _ns("models"), OPT_IN) == ["/mutate"]


def test_webhook_fails_open_fast_and_idempotently(renders: dict[str, Rendered]) -> None:
    for rendered in renders.values():
        if not rendered.of_kind("MutatingWebhookConfiguration"):
            continue
        injector = rendered.one("Service", "injector")
        for hook in _webhooks(rendered).values():
            assert hook["failurePolicy"] == "Ignore"
            assert hook["sideEffects"] == "None"
            assert 1 <= hook["timeoutSeconds"] <= 5
            assert hook["reinvocationPolicy"] == "IfNeeded"
            assert hook["admissionReviewVersions"] == ["v1"]
            assert hook["rules"] == [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                    "scope": "Namespaced",
                }
            ]
            service = hook["clientConfig"]["service"]
            assert (service["name"], service["namespace"], service["port"]) == (
                injector["metadata"]["name"],
                NAMESPACE,
                443,
            )


def _tls_secret_name(rendered: Rendered) -> str:
    volumes = rendered.one("Deployment", "injector")["spec"]["template"]["spec"]["volumes"]
    (tls,) = [volume for volume in volumes if volume["name"] == "tls"]
    return str(tls["secret"]["secretName"])


def test_helm_generated_certificate_matches_the_ca_bundle(renders: dict[str, Rendered]) -> None:
    rendered = renders["(defaults)"]
    secret = rendered.one("Secret", "injector")
    assert secret["type"] == "kubernetes.io/tls" and secret["metadata"]["name"] == _tls_secret_name(rendered)
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    leaf.verify_directly_issued_by(ca)
    host = f"{rendered.one('Service', 'injector')['metadata']['name']}.{NAMESPACE}.svc"
    assert host in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    for hook in _webhooks(rendered).values():
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


def test_cert_manager_certificate_and_ca_injection(renders: dict[str, Rendered]) -> None:
    for name, own_issuer in (("cert-manager-values.yaml", True), ("cert-manager-issuer-values.yaml", False)):
        rendered = renders[name]
        assert not rendered.of_kind("Secret")
        certificate = rendered.one("Certificate")
        assert certificate["apiVersion"] == "cert-manager.io/v1"
        assert certificate["spec"]["secretName"] == _tls_secret_name(rendered)
        host = f"{rendered.one('Service', 'injector')['metadata']['name']}.{NAMESPACE}.svc"
        assert host in certificate["spec"]["dnsNames"]
        assert "server auth" in certificate["spec"]["usages"]
        configuration = rendered.one("MutatingWebhookConfiguration")
        assert configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{NAMESPACE}/{certificate['metadata']['name']}"
        )
        assert all("caBundle" not in hook["clientConfig"] for hook in configuration["webhooks"])
        issuers = rendered.of_kind("Issuer")
        if own_issuer:
            (issuer,) = issuers
            assert issuer["spec"] == {"selfSigned": {}}
            assert certificate["spec"]["issuerRef"] == {
                "name": issuer["metadata"]["name"],
                "kind": "Issuer",
                "group": "cert-manager.io",
            }
        else:
            assert not issuers
            assert certificate["spec"]["issuerRef"] == {
                "name": "internal-ca",
                "kind": "ClusterIssuer",
                "group": "cert-manager.io",
            }


def test_existing_secret_mode(renders: dict[str, Rendered]) -> None:
    rendered = renders["plain-sidecar-values.yaml"]
    assert _tls_secret_name(rendered) == "model-health-injector-tls"
    assert not rendered.of_kind("Secret") and not rendered.of_kind("Certificate")
    bundle = yaml.safe_load((CHART / "ci" / "plain-sidecar-values.yaml").read_text())["injector"]["tls"]["secret"][
        "caBundle"
    ]
    assert all(hook["clientConfig"]["caBundle"] == bundle for hook in _webhooks(rendered).values())


# ---------------------------------------------------------------------------------------------
# Component configs: the chart's ConfigMaps are loaded by the components' own config models.


def _configs(rendered: Rendered, tmp_path: Path) -> Iterator[tuple[str, Path, type]]:
    for component, (key, model) in CONFIG_MODELS.items():
        configmap = rendered.maybe("ConfigMap", component)
        if configmap is None:
            continue
        path = tmp_path / rendered.values_file.strip("()") / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][key])
        yield component, path, model


def test_every_config_loads(renders: dict[str, Rendered], tmp_path: Path) -> None:
    loaded = refused = 0
    for rendered in renders.values():
        for component, path, model in _configs(rendered, tmp_path):
            if component == "aggregator" and not yaml.safe_load(path.read_text())["models"]:
                # No models listed (the defaults): the aggregator refuses to start, naming the key.
                with pytest.raises(UserError, match="models: List should have at least 1 item"):
                    load_config(path, model, environ={})
                refused += 1
                continue
            load_config(path, model, environ={})
            loaded += 1
    assert loaded >= 15 and refused >= 1


def _container(rendered: Rendered, component: str) -> dict[str, Any]:
    workload = [w for w in rendered.workloads() if component_of(w) == component][0]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _mounts(rendered: Rendered, component: str) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in _container(rendered, component)["volumeMounts"]}


def _under_a_mount(path: Path, mounts: dict[str, dict[str, Any]]) -> bool:
    return any(str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount for mount in mounts)


def test_configs_agree_with_the_pods(renders: dict[str, Rendered], tmp_path: Path) -> None:
    for rendered in renders.values():
        for component, path, model in _configs(rendered, tmp_path):
            if component == "aggregator" and not yaml.safe_load(path.read_text())["models"]:
                continue  # refused at start, see test_every_config_loads
            config = load_config(path, model, environ={})
            container = _container(rendered, component)
            assert container["command"][:2] == ["model-health", {"node-agent": "node"}.get(component, component)]
            config_path = container["command"][-1]
            assert config_path.endswith(path.name) and _under_a_mount(Path(config_path), _mounts(rendered, component))
            assert config.http.port == container["ports"][0]["containerPort"]
            mounts = _mounts(rendered, component)
            if component == "aggregator":
                assert _under_a_mount(config.state.dir, mounts) or str(config.state.dir) in mounts
                # More than one replica only adds up through the summaries topic.
                workload = [w for w in rendered.workloads() if component_of(w) == component][0]
                if workload["spec"].get("replicas", 1) > 1:
                    assert config.kafka.mode == "scale_out"
                for entry in config.models:
                    assert _under_a_mount(entry.reference, mounts), entry.reference
                if config.http.token_file is not None:  # the bearer token of /metrics and the report
                    assert _under_a_mount(config.http.token_file, mounts), config.http.token_file
            if component == "relay":
                assert str(config.state.dir) in mounts
                assert _under_a_mount(config.auth.token_file, mounts)
                for secret_path in (
                    config.target.secret_file,
                    config.target.github.token_file if config.target.github else None,
                ):
                    if secret_path is not None:
                        assert _under_a_mount(secret_path, mounts)
            if component == "injector":
                assert _under_a_mount(config.tls.cert_file, mounts) and _under_a_mount(config.tls.key_file, mounts)


def test_injector_config_follows_values(renders: dict[str, Rendered], tmp_path: Path) -> None:
    configs = {
        name: load_config(path, model, environ={})
        for name in ("(defaults)", "plain-sidecar-values.yaml", "full-values.yaml")
        for component, path, model in _configs(renders[name], tmp_path)
        if component == "injector"
    }
    default, plain, full = configs["(defaults)"], configs["plain-sidecar-values.yaml"], configs["full-values.yaml"]
    assert default.sidecar.native_sidecar is True and plain.sidecar.native_sidecar is False
    assert plain.sidecar.port == 9090 and plain.sidecar.gpu.mode == "sidecar" and default.sidecar.gpu.mode == "off"
    assert default.sidecar.kafka.bootstrap_servers == "kafka.kafka.svc:9092"
    assert full.sidecar.kafka.mode == "summaries"
    assert full.sidecar.env == {"MODEL_HEALTH_KAFKA__BATCH_MAX_SECONDS": "2"}
    assert default.sidecar.run_as_user == 10001
    assert dict(default.sidecar.resources.requests) == {"cpu": "50m", "memory": "64Mi"}


def test_chart_config_injects_a_valid_pod(renders: dict[str, Rendered], tmp_path: Path) -> None:
    import kubernetes_validate

    from exporter.injector.mutation import SidecarConfigValidator, plan
    from tests.exporter.injector import reviews

    for name in ("(defaults)", "plain-sidecar-values.yaml"):
        (config,) = [load_config(p, m, environ={}) for c, p, m in _configs(renders[name], tmp_path) if c == "injector"]
        decision = plan(reviews.kserve_predictor(), "models", "pod", config.sidecar, SidecarConfigValidator())
        assert decision.outcome == "injected" and decision.mutated is not None
        for version in ("1.29", "1.33"):
            kubernetes_validate.validate(decision.mutated, version, strict=True)


# ---------------------------------------------------------------------------------------------
# CRD kinds, checked structurally (no schema in kubernetes-validate).


def test_monitors(renders: dict[str, Rendered]) -> None:
    jobs = ScrapeJobsConfig()
    expected_jobs = {
        "aggregator": jobs.aggregator,
        "relay": jobs.relay,
        "injector": jobs.injector,
        "node-agent": jobs.node,
    }
    for rendered in renders.values():
        for monitor in rendered.of_kind("ServiceMonitor"):
            assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
            component = component_of(monitor)
            service = rendered.one("Service", component)
            assert matches(monitor["spec"]["selector"], service["metadata"]["labels"])
            assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
            (endpoint,) = monitor["spec"]["endpoints"]
            assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
            assert endpoint["path"] == "/metrics"
            assert {"action": "replace", "targetLabel": "job", "replacement": expected_jobs[component]} in endpoint[
                "relabelings"
            ]
            if component == "aggregator":
                # Scraped with the bearer token the aggregator asks for, exactly when it asks.
                tokens = [_aggregator_token_secret(rendered)]
                expected = {"type": "Bearer", "credentials": {"name": tokens[0], "key": "token"}} if tokens[0] else None
                assert endpoint.get("authorization") == expected
            # GPU time per model joins OpenCost's node_gpu_hourly_cost on `node`.
            node_label = {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                "targetLabel": "node",
            }
            assert (node_label in endpoint["relabelings"]) == (component == "node-agent")
            if component == "injector":
                assert endpoint["scheme"] == "https"
                assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": _tls_secret_name(rendered), "key": "ca.crt"}
                assert endpoint["tlsConfig"]["serverName"] == f"{service['metadata']['name']}.{NAMESPACE}.svc"
        for monitor in rendered.of_kind("PodMonitor"):
            assert monitor["spec"]["selector"] == {"matchLabels": {"model-health.io/sidecar": "injected"}}
            assert monitor["spec"]["namespaceSelector"] == {"any": True}
            (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
            assert endpoint["port"] == "model-health"  # the port name the injector gives the sidecar
            assert {"action": "replace", "targetLabel": "job", "replacement": jobs.sidecar} in endpoint["relabelings"]
            assert {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_uid"],
                "targetLabel": "pod_uid",
            } in endpoint["relabelings"]
            assert {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                "targetLabel": "node",
            } in endpoint["relabelings"]


def _aggregator_token_secret(rendered: Rendered) -> str | None:
    """The Secret mounted as the aggregator's ``http.token_file``, None without one."""
    workload = [w for w in rendered.workloads() if component_of(w) == "aggregator"][0]
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    return volumes["http-token"]["secret"]["secretName"] if "http-token" in volumes else None


def test_the_aggregator_token_is_set_only_when_asked_for(renders: dict[str, Rendered]) -> None:
    assert _aggregator_token_secret(renders["full-values.yaml"]) == "model-health-aggregator-token"
    assert _aggregator_token_secret(renders["(defaults)"]) is None


def test_monitor_selector_labels_from_values(full: Rendered) -> None:
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for doc in full.of_kind(kind):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert full.one("PrometheusRule")["metadata"]["labels"]["role"] == "alert-rules"


def test_prometheus_rule_is_the_alerts_output(renders: dict[str, Rendered], no_model_health_env: None) -> None:
    rule = renders["(defaults)"].one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == render_rules(AlertsConfig())
    assert all(group["rules"] for group in rule["spec"]["groups"])


def test_no_monitoring_objects_when_disabled(renders: dict[str, Rendered]) -> None:
    rendered = renders["relay-github-values.yaml"]
    kinds = {doc["kind"] for doc in rendered.docs}
    assert not kinds & CRD_KINDS and "NetworkPolicy" not in kinds and "MutatingWebhookConfiguration" not in kinds


# ---------------------------------------------------------------------------------------------
# Generated chart files and dashboards.


def _generate(command: str, out: Path) -> dict[str, bytes]:
    """What ``model-health <command> --out`` writes, as ``make chart-files`` runs it."""
    from click.testing import CliRunner

    from exporter.cli import cli

    result = CliRunner().invoke(cli, [command, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {path.name: path.read_bytes() for path in out.iterdir()}


@pytest.mark.parametrize("command", ["alerts", "dashboards"])
def test_chart_files_equal_a_fresh_generation(command: str, tmp_path: Path, no_model_health_env: None) -> None:
    generated = _generate(command, tmp_path)
    assert generated, f"model-health {command} wrote nothing"
    in_chart = {path.name: path.read_bytes() for path in (CHART / "files" / command).iterdir()}
    assert in_chart == generated, f"the chart's files/{command} are stale: run `make chart-files`"


def test_dashboard_configmaps(full: Rendered, renders: dict[str, Rendered]) -> None:
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    configmaps = [cm for cm in full.of_kind("ConfigMap") if component_of(cm) == "dashboards"]
    assert len(configmaps) == len(files)
    by_file = {key: (cm, value) for cm in configmaps for key, value in cm["data"].items()}
    for path in files:
        configmap, text = by_file[path.name]
        assert text == path.read_text().rstrip("\n")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["namespace"] == "grafana"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "ML / Model Health"
    assert len(files) >= 4
    assert not [
        cm for cm in renders["relay-github-values.yaml"].of_kind("ConfigMap") if component_of(cm) == "dashboards"
    ]


# ---------------------------------------------------------------------------------------------
# Values: the schema and the template checks refuse mistakes with a message.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "injector.timeoutSeconds=10"], "injector.timeoutSeconds: Must be less than or equal to 5"),
        (["--set", "aggregator.replica=3"], "Additional property replica is not allowed"),
        (["--set", "injector.tls.mode=openssl"], "injector.tls.mode"),
        (["--set", "injector.sidecar.gpuMode=all"], "injector.sidecar.gpuMode"),
        (["--set", "relay.enabled=true"], "relay.existingSecret is required"),
        (
            ["--set", "injector.tls.mode=secret", "--set", "injector.tls.secret.name=x"],
            "injector.tls.secret.caBundle is required",
        ),
        (["--set", "relay.replicas=2"], "relay.replicas"),
    ],
)
def test_bad_values_fail_with_a_message(args: list[str], message: str) -> None:
    assert message in render_fails(*args)


def test_notes(tmp_path: Path) -> None:
    notes = render_notes(tmp_path)
    assert "aggregator.config.models is empty" in notes
    assert "kubectl label namespace <ns> model-health.io/inject=true" in notes
    assert f"Never injected: kube-system and {NAMESPACE}" in notes
    notes = render_notes(tmp_path / "full", "-f", str(CHART / "ci" / "full-values.yaml"))
    assert "models is empty" not in notes and "/v1/alertmanager" in notes and "hostPID" in notes


def test_dockerfile_builds_the_image_the_chart_runs() -> None:
    dockerfile = (CHART.parents[2] / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    # The chart and the injector run as this numeric user (runAsNonRoot needs it numeric).
    assert lines[-1] == 'ENTRYPOINT ["model-health"]' or "USER 10001:10001" in lines
    assert "USER 10001:10001" in lines
    installs = [line for line in lines if "pip" in line and "install" in line]
    assert installs and not any("test" in line for line in installs)


def test_scale_out_replicas_find_each_other_for_reports(renders: dict[str, Rendered]) -> None:
    """In scale-out any replica answers a report_url: the config names the headless peers Service,
    which selects every aggregator pod and is not scraped (the ServiceMonitor selects the other)."""
    rendered = renders["(defaults)"]
    config = yaml.safe_load(rendered.one("ConfigMap", "aggregator")["data"]["aggregator.yaml"])
    assert config["kafka"]["mode"] == "scale_out"
    peers = rendered.one("Service", "aggregator-peers")
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["selector"] == rendered.one("Service", "aggregator")["spec"]["selector"]
    assert config["http"]["peers"] == f"{peers['metadata']['name']}.{NAMESPACE}.svc:9877"
    AggregatorHttpConfig.model_validate(config["http"])  # the config takes it
