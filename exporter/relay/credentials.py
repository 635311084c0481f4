"""Secrets the relay reads from files: Alertmanager's bearer token, the signing secret, target tokens.

Files, not config values, so a Kubernetes Secret can be mounted and the config file stays
shareable. Each is read once at start (:func:`exporter.httpd.auth.read_secret`); a missing,
empty or malformed file fails the start with the config field that names it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from exporter.config import RelayConfig
from exporter.errors import UserError
from exporter.httpd.auth import read_secret


@dataclass(frozen=True)
class Credentials:
    auth_token: str
    webhook: Webhook | None
    target_token: str | None


def load_webhook(path: Path, field: str) -> Webhook:
    secret = read_secret(path, field)
    encoded = secret.removeprefix("whsec_")
    try:
        # The library decodes leniently (it drops stray characters); a typo should fail here.
        base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError, ValueError):
        raise UserError(f"{field}: {path} does not hold a Standard Webhooks secret (whsec_ and base64)") from None


def load_credentials(config: RelayConfig) -> Credentials:
    target = config.target
    webhook = load_webhook(target.secret_file, "target.secret_file") if target.secret_file is not None else None
    token_field, token_file = _target_token_file(config)
    token = read_secret(token_file, token_field) if token_file is not None else None
    return Credentials(read_secret(config.auth.token_file, "auth.token_file"), webhook, token)


def _target_token_file(config: RelayConfig) -> tuple[str, Path | None]:
    target = config.target
    if target.kind == "github" and target.github is not None:
        return "target.github.token_file", target.github.token_file
    if target.kind == "kubeflow" and target.kubeflow is not None:
        return "target.kubeflow.token_file", target.kubeflow.token_file
    if target.kind == "argo" and target.argo is not None:
        return "target.argo.token_file", target.argo.token_file
    return "", None
