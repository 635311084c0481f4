"""What the generator commands render (dashboards, alerts, rollout gates), written into a folder.

Each generator renders ``{file name: text}``; this writes them as they are, UTF-8, the folder
made if missing, and says which paths it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_rendered(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Write each of ``files`` into ``out``; the paths written, in ``files``' order."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
