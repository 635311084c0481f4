"""Debian's headless Chromium, driven by Playwright (never Playwright's own browser build).

``.ci/system-packages`` installs ``chromium``; the ``test`` extra brings ``playwright``.
Every launch gets a fresh profile directory and the flags that keep Chromium from
phoning home (this machine has no network: background connections would only show up
as failed requests).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = os.environ.get("MODEL_HEALTH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require_chromium() -> str:
    """The browser's path; fails (as a missing Prometheus does) when it is not installed."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise AssertionError(f"{CHROMIUM} is not installed; `make test` installs it via .ci/system-packages")
    return CHROMIUM


@dataclass
class PageLog:
    """What a page did while it was open: console errors, page errors, every request."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def browser_page(width: int = 1280, height: int = 900, scale: float = 1.0) -> Iterator[tuple[Any, PageLog]]:
    """A fresh Chromium page, with its console errors, page errors and requests recorded."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    profile = tempfile.mkdtemp(prefix="model-health-chromium-")
    log = PageLog()
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: log.page_errors.append(str(e)))
                page.on("request", lambda r: log.requests.append(r.url))
                yield page, log
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
