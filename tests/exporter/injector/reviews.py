"""AdmissionReview v1 requests as the API server sends them, for the pods the injector meets.

The envelope follows the documented ``admission.k8s.io/v1`` request (uid, kind, resource,
requestKind/requestResource, name, namespace, operation, userInfo, object, oldObject,
dryRun, options). The pods are shaped like the ones KServe, Seldon Core v1 and a plain
Deployment create — labels and containers as those controllers set them — after API
server defaulting, which runs before mutating admission.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

POD_GVK = {"group": "", "version": "v1", "kind": "Pod"}
POD_GVR = {"group": "", "version": "v1", "resource": "pods"}


def review(pod: dict[str, Any], namespace: str, *, operation: str = "CREATE", uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": POD_GVK,
            "resource": POD_GVR,
            "requestKind": POD_GVK,
            "requestResource": POD_GVR,
            "name": pod["metadata"].get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "5c3c7a0e-6f0e-4d8c-9b1a-0a6f1e1b2c3d",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": copy.deepcopy(pod),
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def _defaults(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        **container,
    }


def _pod(metadata: dict[str, Any], containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [_defaults(container) for container in containers],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            **spec,
        },
    }


def _owner(kind: str, name: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "name": name,
            "uid": "0f6b1c52-1a4e-4c36-9e53-3b7f0b9d2a11",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def kserve_predictor() -> dict[str, Any]:
    """A KServe RawDeployment predictor pod of InferenceService ``fraud``, opted in by label."""
    return _pod(
        {
            "generateName": "fraud-predictor-6d9c7b5f8-",
            "namespace": "models",
            "labels": {
                "app": "isvc.fraud-predictor",
                "component": "predictor",
                "pod-template-hash": "6d9c7b5f8",
                "serving.kserve.io/inferenceservice": "fraud",
                "model-health.io/inject": "true",
            },
            "annotations": {
                "serving.kserve.io/deploymentMode": "RawDeployment",
                "serving.kserve.io/storage-initializer-sourceuri": "gs://models/fraud/7",
                "model-health.io/model-version": "7",
            },
            "ownerReferences": _owner("ReplicaSet", "fraud-predictor-6d9c7b5f8"),
        },
        [
            {
                "name": "kserve-container",
                "image": "kserve/sklearnserver:v0.13.0",
                "args": ["--model_name=fraud", "--model_dir=/mnt/models", "--http_port=8080"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}],
                "readinessProbe": {
                    "httpGet": {"path": "/v1/models/fraud", "port": 8080, "scheme": "HTTP"},
                    "periodSeconds": 10,
                    "timeoutSeconds": 1,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
            }
        ],
        initContainers=[
            _defaults(
                {
                    "name": "storage-initializer",
                    "image": "kserve/storage-initializer:v0.13.0",
                    "args": ["gs://models/fraud/7", "/mnt/models"],
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "100m", "memory": "100Mi"},
                    },
                    "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
                }
            )
        ],
        volumes=[{"name": "kserve-provision-location", "emptyDir": {}}],
    )


def seldon_v1_model() -> dict[str, Any]:
    """A Seldon Core v1 pod (SeldonDeployment ``income``, model unit plus executor), opted in by annotation."""
    return _pod(
        {
            "generateName": "income-default-0-classifier-7f6d9c8b4-",
            "namespace": "seldon",
            "labels": {
                "app": "income-default-0-classifier",
                "app.kubernetes.io/managed-by": "seldon-core",
                "fluentd": "true",
                "seldon-app": "income-default",
                "seldon-app-svc": "income-default-classifier",
                "seldon-deployment-id": "income",
                "seldon.io/model": "true",
                "version": "v2",
                "pod-template-hash": "7f6d9c8b4",
            },
            "annotations": {"model-health.io/inject": "true", "prometheus.io/path": "/prometheus"},
            "ownerReferences": _owner("ReplicaSet", "income-default-0-classifier-7f6d9c8b4"),
        },
        [
            {
                "name": "classifier",
                "image": "seldonio/sklearnserver:1.18.0",
                "env": [{"name": "PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "value": "9000"}],
                "ports": [
                    {"name": "http", "containerPort": 9000, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 6000, "protocol": "TCP"},
                ],
            },
            {
                "name": "seldon-container-engine",
                "image": "seldonio/seldon-core-executor:1.18.0",
                "args": ["--sdep", "income", "--namespace", "seldon", "--predictor", "default", "--http_port", "8000"],
                "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                "securityContext": {"runAsUser": 8888},
            },
        ],
    )


def plain_fastapi() -> dict[str, Any]:
    """A plain Deployment's FastAPI model server, named by app.kubernetes.io labels."""
    return _pod(
        {
            "generateName": "churn-api-5b8f9d7c6-",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/name": "churn",
                "app.kubernetes.io/version": "3",
                "pod-template-hash": "5b8f9d7c6",
            },
            "annotations": {"model-health.io/inject": "true"},
            "ownerReferences": _owner("ReplicaSet", "churn-api-5b8f9d7c6"),
        },
        [
            {
                "name": "api",
                "image": "registry.example.com/churn-api:3",
                "command": ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"],
                "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
            }
        ],
    )


def unlabelled() -> dict[str, Any]:
    """A pod with no opt-in of its own (reaches the injector only through a labelled namespace)."""
    pod = plain_fastapi()
    del pod["metadata"]["annotations"]["model-health.io/inject"]
    return pod


def opted_out() -> dict[str, Any]:
    """A pod in an opted-in namespace that opts itself out."""
    pod = plain_fastapi()
    pod["metadata"]["labels"]["model-health.io/inject"] = "false"
    del pod["metadata"]["annotations"]["model-health.io/inject"]
    return pod


def already_injected() -> dict[str, Any]:
    """A pod that already went through the injector (as on reinvocation)."""
    pod = plain_fastapi()
    pod["metadata"]["annotations"]["model-health.io/status"] = "injected"
    pod["spec"]["initContainers"] = [
        _defaults({"name": "model-health-sidecar", "image": "model-health:old", "restartPolicy": "Always"})
    ]
    return pod
