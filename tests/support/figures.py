"""Figures of the reliability suite: one line of numbers per test, one table per run.

A reliability test records what it did and what came out — records sent and counted, faults
injected, records lost and duplicated, latencies, memory — with the ``figures`` fixture of
``tests/reliability/conftest.py``::

    figures.record(sent=3_000, counted=3_000, faults=4, lost=0, duplicated=0, kills=4)

The values travel in the test report's ``user_properties``, which pytest-xdist carries from
its workers to the controller, so the table is whole under ``make test`` (``-n 2``) too. At the
end of the run the controller prints them as a table and writes them to
``reliability-figures.json`` in ``$MODEL_HEALTH_FIGURES_DIR`` (else the system's temporary
directory).

Registered from ``tests/conftest.py`` (``register``), not from ``tests/reliability/conftest.py``:
under xdist the controller does not collect, so it never loads the conftest files of
sub-directories, and their terminal-summary hooks would never run.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

PROPERTY = "model_health_figures"
FILENAME = "reliability-figures.json"
# The columns every figures line has, in table order; anything else goes in "other".
MAIN_COLUMNS = ("sent", "counted", "faults", "lost", "duplicated")


def figures_property(test: str, values: dict[str, Any]) -> tuple[str, str]:
    """The ``user_properties`` entry of one figures line (JSON text: it crosses xdist intact)."""
    return PROPERTY, json.dumps({"test": test, **values}, sort_keys=False, default=str)


def figures_directory() -> Path:
    return Path(os.environ.get("MODEL_HEALTH_FIGURES_DIR") or tempfile.gettempdir())


class FiguresReport:
    """Collects figures lines from test reports; prints and writes them at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.lines: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in getattr(report, "user_properties", ()):
            if name == PROPERTY:
                line = json.loads(value)
                # A test may record again (setup, call and teardown reports repeat the list).
                self.lines[f"{line['test']}#{line.get('part', '')}"] = line

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or not self.lines:
            return
        lines = sorted(self.lines.values(), key=lambda line: line["test"])
        path = figures_directory() / FILENAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(lines, indent=2) + "\n")
            where = f"written to {path}"
        except OSError as error:
            where = f"not written ({path}: {error.strerror or error})"
        terminalreporter.write_sep("=", "reliability figures")
        terminalreporter.write(render_table(lines, width=max(terminalreporter._tw.fullwidth, 200)))
        terminalreporter.write_line(f"figures {where}")


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(lines: list[dict[str, Any]], width: int = 160) -> str:
    """The figures as a rich table (plain text, no colour), one row per test."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, expand=False)
    table.add_column("test", overflow="fold", min_width=48)
    for column in MAIN_COLUMNS:
        table.add_column(column, justify="right")
    table.add_column("other figures", overflow="fold")
    for line in lines:
        other = {k: v for k, v in line.items() if k not in ("test", *MAIN_COLUMNS)}
        table.add_row(  # test ids carry [brackets], which rich would take for markup
            escape(line["test"]),
            *(_cell(line.get(column)) for column in MAIN_COLUMNS),
            escape(", ".join(f"{k}={_cell(v)}" for k, v in other.items())),
        )
    buffer = io.StringIO()
    Console(file=buffer, width=max(width, 100), color_system=None, force_terminal=False).print(table)
    return buffer.getvalue()


def markdown_table(lines: list[dict[str, Any]]) -> str:
    """The same figures as a Markdown table, for docs/benchmarks.md."""
    rows = ["| test | " + " | ".join(MAIN_COLUMNS) + " | other figures |", "|" + " --- |" * (len(MAIN_COLUMNS) + 2)]
    for line in lines:
        other = {k: v for k, v in line.items() if k not in ("test", "seed", "part", *MAIN_COLUMNS)}
        cells = [
            f"`{line['test']}`",
            *(_cell(line.get(c)) for c in MAIN_COLUMNS),
            ", ".join(f"{k} {_cell(v)}" for k, v in other.items()),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def register(config: pytest.Config) -> None:
    """Install the figures report (call from ``pytest_configure``)."""
    if not config.pluginmanager.has_plugin("model-health-figures"):
        config.pluginmanager.register(FiguresReport(config), "model-health-figures")


if __name__ == "__main__":  # python -m tests.support.figures [FILE]: the Markdown table of docs/benchmarks.md
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else figures_directory() / FILENAME
    sys.stdout.write(markdown_table(json.loads(source.read_text())))
