"""``InjectorConfig``: documented keys, defaults the chart relies on, field-naming errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import InjectorConfig, config_reference, field_paths, load_config
from exporter.errors import UserError


def test_every_key_is_documented() -> None:
    table = config_reference(InjectorConfig)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == field_paths(InjectorConfig)
    assert all(row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows)


def test_defaults_match_the_chart_layout(tmp_path: Path) -> None:
    path = tmp_path / "injector.yaml"
    path.write_text("")
    config = load_config(path, InjectorConfig, environ={"MODEL_HEALTH_SIDECAR__NATIVE_SIDECAR": "false"})
    assert config.http.port == 8443
    assert str(config.tls.cert_file) == "/etc/model-health/tls/tls.crt"
    assert config.sidecar.port == 9878 and config.sidecar.gpu.mode == "off"
    assert config.sidecar.native_sidecar is False  # the environment overrides, as for every command


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("sidecar: {resources: {requests: {cpu: lots}}}", "sidecar.resources.requests.cpu"),
        ("sidecar: {resources: {requests: {gpu: '1'}}}", "sidecar.resources.requests.gpu"),
        ("sidecar: {env: {'1BAD': x}}", "sidecar.env"),
        ("sidecar: {native: true}", "did you mean 'native_sidecar'"),
        ("http: {port: 70000}", "http.port"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "injector.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=where.replace(".", r"\.").replace("(", r"\(")):
        load_config(path, InjectorConfig, environ={})
