"""The README's Sidecar section stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from exporter.config import SidecarConfig, config_reference
from exporter.pipeline.summary_wire import CONTENT_TYPE, SUMMARY_SCHEMA
from exporter.sidecar.ingest import KSERVE_PATH, NATIVE_PATH

README = Path(__file__).resolve().parents[3] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## Sidecar\n", 1)[1].split("\n## ", 1)[0]


def test_config_reference_is_current():
    assert config_reference(SidecarConfig) in section(), "README's sidecar config reference is out of date"


def test_endpoints_and_summary_format_are_documented():
    text = section()
    assert f"`POST {KSERVE_PATH}`" in text and f"`POST {NATIVE_PATH}`" in text
    assert CONTENT_TYPE in text
    assert all(f"`{name}`" in text for name in SUMMARY_SCHEMA.names)
    assert "logger: {mode: all, url: http://localhost:9878/}" in text
