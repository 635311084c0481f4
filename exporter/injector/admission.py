"""AdmissionReview v1 in, AdmissionReview v1 out.

The request shape is Kubernetes' ``admission.k8s.io/v1`` ``AdmissionReview``; only the
fields the injector needs are modelled, and unknown fields are ignored, so newer API
servers keep working. A body that is not such a review is a :class:`MalformedReview`
(the server answers 400). A well-formed review is always answered ``allowed: true``: the
injector mutates, it never vetoes a pod. When it mutates, the response carries a
``JSONPatch`` (RFC 6902, built by ``jsonpatch.make_patch`` from the original and mutated
pod) base64-encoded, as the API server requires.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import jsonpatch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

API_VERSION = "admission.k8s.io/v1"
# The API server shows warnings to the client; Kubernetes asks for short ones.
MAX_WARNING_CHARS = 240


class MalformedReview(ValueError):
    """The body is not an ``admission.k8s.io/v1`` AdmissionReview request."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GroupVersionKind(_Loose):
    group: str = ""
    version: str
    kind: str


class AdmissionRequest(_Loose):
    uid: str = Field(min_length=1)
    kind: GroupVersionKind
    operation: str
    namespace: str = ""
    name: str = ""
    object: dict[str, Any] | None = None
    dryRun: bool = False


class AdmissionReview(_Loose):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest

    @property
    def is_pod_create(self) -> bool:
        gvk = self.request.kind
        return gvk.group == "" and gvk.kind == "Pod" and self.request.operation == "CREATE"


def parse_review(body: bytes) -> AdmissionReview:
    """``body`` as an AdmissionReview; ``MalformedReview`` says what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedReview(f"body is not JSON: {exc}") from None
    except RecursionError:  # nesting deeper than the parser's stack: no Pod is that deep
        raise MalformedReview("body is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedReview("body is not a JSON object")
    try:
        review = AdmissionReview.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MalformedReview(f"not an {API_VERSION} AdmissionReview request: {where}: {first['msg']}") from None
    if review.is_pod_create and not isinstance(review.request.object, dict):
        raise MalformedReview("request.object: a Pod CREATE must carry the pod")
    return review


def json_patch(original: dict[str, Any], mutated: dict[str, Any]) -> list[dict[str, Any]]:
    """The RFC 6902 operations that turn ``original`` into ``mutated``."""
    return list(jsonpatch.make_patch(original, mutated).patch)


def response(uid: str, patch: list[dict[str, Any]] | None = None, warnings: tuple[str, ...] = ()) -> dict[str, Any]:
    """An allowing AdmissionReview response, with ``patch`` when there is one."""
    body: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    if warnings:
        body["warnings"] = [_short(warning) for warning in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"
