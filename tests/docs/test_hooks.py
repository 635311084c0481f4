"""The site's build hook: code-span pipes in table rows lose GitHub's escaping, nothing else changes."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "hooks.py"


def test_hook_doctests() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0
    text = "| `kafka.format` | `inputs\\|outputs` |\nplain `a\\|b`\n| c\\|d |"
    assert module.on_page_markdown(text) == "| `kafka.format` | `inputs|outputs` |\nplain `a\\|b`\n| c\\|d |"
