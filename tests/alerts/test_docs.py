"""The alerts page and the runbooks stay in step with the generated rules."""

from __future__ import annotations

from pathlib import Path

from alerts import ALERT_NAMES, recording_rule_names

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_alert_and_recording_rule_is_documented():
    text = (DOCS / "alerts-and-dashboards.md").read_text(encoding="utf-8")
    for name in ALERT_NAMES:
        assert f"| `{name}` |" in text and f"(runbooks/{name}.md)" in text, name
    for name in recording_rule_names():
        assert f"| `{name}` |" in text, name


def test_every_alert_has_a_runbook_in_the_index():
    index = (DOCS / "runbooks" / "index.md").read_text(encoding="utf-8")
    for name in ALERT_NAMES:
        assert (DOCS / "runbooks" / f"{name}.md").is_file(), name
        assert f"[{name}]({name}.md)" in index, name
    assert {path.stem for path in (DOCS / "runbooks").glob("*.md")} == set(ALERT_NAMES) | {"index"}
