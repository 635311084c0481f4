"""The committed reference pages (docs/reference/) are exactly what docs/gen_reference.py writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def generator() -> ModuleType:
    """docs/gen_reference.py as a module (docs/ is not a package)."""
    if "gen_reference" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["gen_reference"] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["gen_reference"]


PAGES = generator().pages()


def test_every_config_model_has_a_page() -> None:
    from pydantic_settings import BaseSettings

    import exporter.config

    models = {
        name
        for name, value in vars(exporter.config).items()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value is not BaseSettings
        and not name.startswith("_")
    }
    assert models == {spec.model for spec in generator().CONFIG_PAGES}
    assert set(PAGES) == {"reference/metrics.md"} | {
        f"reference/config/{spec.stem}.md" for spec in generator().CONFIG_PAGES
    }


@pytest.mark.parametrize("path", sorted(PAGES))
def test_committed_page_is_current(path: str) -> None:
    committed = DOCS / path
    assert committed.is_file(), f"docs/{path} is missing: run `python docs/gen_reference.py` (or `make docs`)"
    assert committed.read_text(encoding="utf-8") == PAGES[path], (
        f"docs/{path} is stale: run `python docs/gen_reference.py` (or `make docs`) and commit it"
    )


def test_metric_page_has_the_catalogue_table() -> None:
    from exporter.catalogue import CATALOGUE, markdown_table

    page = PAGES["reference/metrics.md"]
    assert markdown_table() in page
    assert all(f"`{metric.name}`" in page for metric in CATALOGUE)


def test_config_pages_have_their_tables() -> None:
    import exporter.config

    for spec in generator().CONFIG_PAGES:
        table = exporter.config.config_reference(getattr(exporter.config, spec.model))
        assert table in PAGES[f"reference/config/{spec.stem}.md"], spec.model
