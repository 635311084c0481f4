"""The relay's config: defaults, per-kind rules, secret files, and start-up errors naming the field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from exporter.config import RelayConfig, config_reference, field_paths, load_config
from exporter.errors import UserError
from exporter.relay.credentials import load_credentials
from tests.exporter.relay.conftest import TOKEN, child_env, write_config
from tests.exporter.test_config import all_fields


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> RelayConfig:
    path = tmp_path / "relay.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, RelayConfig, environ=environ or {})


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as info:
        load(tmp_path, text)
    return str(info.value).split(": ", 1)[1]


def test_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        target: {url: "http://trainer.ml:8080/hooks/retrain", secret_file: secret}
        auth: {token_file: token}
    """,
    )
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9880)
    assert config.retrain.alert_name == "ModelHealthRetrainRecommended"
    assert config.retrain.cooldown_seconds == 6 * 3600
    assert config.target.kind == "generic"
    assert config.target.retry.jitter == "full" and config.target.retry.max_attempts == 8
    assert config.auth.token_file == tmp_path / "token"  # relative to the config file
    assert config.target.secret_file == tmp_path / "secret"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "target: {kind: generic, secret_file: s}\nauth: {token_file: t}",
            "target: url: required when kind is 'generic'",
        ),
        (
            "target: {kind: generic, url: 'http://x'}\nauth: {token_file: t}",
            "target: secret_file: required when kind is 'generic'",
        ),
        (
            "target: {kind: argo, url: 'http://x'}\nauth: {token_file: t}",
            "target: secret_file: required when kind is 'argo'",
        ),
        ("target: {kind: github}\nauth: {token_file: t}", "target: github: required when kind is 'github'"),
        (
            "target: {kind: kubeflow, url: 'http://x'}\nauth: {token_file: t}",
            "target: kubeflow: required when kind is 'kubeflow'",
        ),
        (
            "target: {kind: generic, url: 'http://x', secret_file: s, github: {repository: a/b, token_file: t}}\nauth: {token_file: t}",
            "target: github: options for kind 'github', but kind is 'generic'",
        ),
        ("target: {kind: gitlab}\nauth: {token_file: t}", "target.kind: Input should be"),
        (
            "target: {url: 'ftp://x', secret_file: s}\nauth: {token_file: t}",
            "target.url: must be an http:// or https:// URL",
        ),
        ("target: {url: 'http://x:99999', secret_file: s}\nauth: {token_file: t}", "target.url: bad port"),
        ("target: {url: 'http://x', secret_file: s}", "auth: Field required"),
        (
            "target: {url: 'http://x', secret_file: s, retry: {base_backoff_seconds: 5, max_backoff_seconds: 1}}\nauth: {token_file: t}",
            "target.retry.max_backoff_seconds: must be at least base_backoff_seconds",
        ),
        (
            "target: {url: 'http://x', secret_file: s, retry: {jitter: half}}\nauth: {token_file: t}",
            "target.retry.jitter",
        ),
        (
            "target: {kind: github, github: {repository: 'no-slash', token_file: t}}\nauth: {token_file: t}",
            "target.github.repository: String should match pattern",
        ),
        (
            "target: {url: 'http://x', secret_file: s}\nauth: {token_file: t}\nretrain: {cooldown: 5}",
            "retrain.cooldown: unknown key (did you mean 'cooldown_seconds'?)",
        ),
    ],
)
def test_invalid_configs_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    assert message in error(tmp_path, text)


def test_environment_overrides(tmp_path: Path) -> None:
    environ = {"MODEL_HEALTH_RETRAIN__COOLDOWN_SECONDS": "60", "MODEL_HEALTH_TARGET__RETRY__MAX_ATTEMPTS": "3"}
    config = load(tmp_path, "target: {url: 'http://x', secret_file: s}\nauth: {token_file: t}", environ)
    assert config.retrain.cooldown_seconds == 60 and config.target.retry.max_attempts == 3


def test_reference_documents_every_field() -> None:
    table = config_reference(RelayConfig)
    documented = [row.split("`")[1] for row in table.splitlines() if row.startswith("| `")]
    assert documented == [path for path, _ in all_fields(RelayConfig)] == field_paths(RelayConfig)
    assert not [path for path, field in all_fields(RelayConfig) if not field.description]
    assert "| `http.port` | integer (≥ 1, ≤ 65535) | `9880` |" in table


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("token", None, "auth.token_file: cannot read"),
        ("token", "", "auth.token_file:"),
        ("token", "two words", "auth.token_file:"),
        ("secret", "whsec_not*base64!", "target.secret_file:"),
        ("secret", None, "target.secret_file: cannot read"),
    ],
)
def test_secret_files_are_checked_at_start(
    tmp_path: Path, secret: str, file: str, content: str | None, message: str
) -> None:
    path = write_config(tmp_path, secret, "http://127.0.0.1:1/hook")
    if content is None:
        (tmp_path / file).unlink()
    else:
        (tmp_path / file).write_text(content)
    with pytest.raises(UserError, match=message):
        load_credentials(load_config(path, RelayConfig, environ={}))


def test_credentials_loaded(tmp_path: Path, secret: str) -> None:
    credentials = load_credentials(load_config(write_config(tmp_path, secret, "http://x/h"), RelayConfig, environ={}))
    assert credentials.auth_token == TOKEN and credentials.webhook is not None and credentials.target_token is None


def test_cli_start_error_names_config_and_field(tmp_path: Path, secret: str) -> None:
    path = write_config(tmp_path, secret, "http://127.0.0.1:1/hook")
    (tmp_path / "token").unlink()
    result = subprocess.run(
        [sys.executable, "-c", "from exporter.cli import main; main()", "relay", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {path}: auth.token_file: cannot read {tmp_path / 'token'}" in result.stderr
    assert "Traceback" not in result.stderr
