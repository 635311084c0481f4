"""The sidecar's documentation stays in step with the code: its endpoints and the summary format."""

from __future__ import annotations

from pathlib import Path

from exporter.pipeline.summary_wire import CONTENT_TYPE, SUMMARY_SCHEMA
from exporter.sidecar.ingest import KSERVE_PATH, NATIVE_PATH

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_endpoints_and_kserve_wiring_are_documented():
    text = (DOCS / "sidecar.md").read_text(encoding="utf-8")
    assert f"`POST {KSERVE_PATH}`" in text and f"`POST {NATIVE_PATH}`" in text
    assert "logger: {mode: all, url: http://localhost:9878/}" in text


def test_summary_format_is_documented():
    text = (DOCS / "wire-formats.md").read_text(encoding="utf-8")
    section = text.split("\n## Summary messages\n", 1)[1].split("\n## ", 1)[0]
    assert CONTENT_TYPE in section
    assert all(f"`{name}`" in section for name in SUMMARY_SCHEMA.names)
