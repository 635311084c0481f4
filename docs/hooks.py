"""mkdocs hooks for this site (mkdocs.yml names this file under ``hooks``).

A pipe inside a code span in a table row is written ``\\|`` so that GitHub keeps the cell whole;
Python-Markdown already treats code spans as one cell and would show the backslash. The hook
drops it before the page is rendered, in table rows only.
"""

from __future__ import annotations

import re

CODE_SPAN = re.compile(r"`[^`\n]*`")


def unescape_table_code_pipes(markdown: str) -> str:
    r"""``\|`` → ``|`` inside code spans of table rows.

    >>> unescape_table_code_pipes("| `a\\|b` | c\\|d |\n`e\\|f`")
    '| `a|b` | c\\|d |\n`e\\|f`'
    """
    lines = markdown.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            lines[i] = CODE_SPAN.sub(lambda match: match.group(0).replace("\\|", "|"), line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: object) -> str:
    return unescape_table_code_pipes(markdown)
