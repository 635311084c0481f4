"""The README's "Alerts and dashboards" section stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from alerts import ALERT_NAMES, recording_rule_names
from exporter.config import AlertsConfig, DashboardsConfig, config_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Alerts and dashboards")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_alert_and_recording_rule_is_documented():
    text = section()
    for name in ALERT_NAMES:
        assert f"| `{name}` |" in text and f"(docs/runbooks/{name}.md)" in text, name
    for name in recording_rule_names():
        assert f"| `{name}` |" in text, name


def test_config_references_are_current():
    text = section()
    assert config_reference(AlertsConfig) in text
    assert config_reference(DashboardsConfig) in text
