"""Small PromQL helpers: build selectors, and find the series names an expression reads.

``metric_names`` is the guard behind "every rule and panel names only catalogued series": a
tokenizer, not a parser, that drops what cannot be a series name — strings, label matchers in
``{…}``, label lists after ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``,
range and subquery brackets, durations, numbers, Grafana variables, function calls (an
identifier followed by ``(``) and keywords — and keeps every other identifier.

>>> sorted(metric_names('sum by (model) (rate(model_health_predictions_total{job="a"}[5m]))'))
['model_health_predictions_total']
>>> sorted(metric_names('up{job=~"a|b"} == 0 or absent(up{job="a"})'))
['up']
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Series Prometheus makes itself: rules and panels may name them besides the catalogue's.
PROMETHEUS_SERIES: frozenset[str] = frozenset({"up", "ALERTS"})

# Aggregation operators and binary/modifier keywords: never series names, even without "(".
KEYWORDS: frozenset[str] = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
        "quantile", "limitk", "limit_ratio",
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
        "start", "end", "atan2",
        "inf", "nan",
    }
)  # fmt: skip
_LABEL_LIST_KEYWORDS = ("by", "without", "on", "ignoring", "group_left", "group_right")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\$?\w+|\[\[[^\]]*\]\]")
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:%s)\s*\([^()]*\)" % "|".join(_LABEL_LIST_KEYWORDS))
_OFFSET_OR_AT = re.compile(r"\boffset\s+-?[0-9a-z]+|@\s*(?:-?[0-9.e+]+|start\s*\(\s*\)|end\s*\(\s*\))")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)(?![\w:])", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> frozenset[str]:
    """The series names ``expr`` selects (bare names, not ``{__name__=…}`` matchers)."""
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" 1 ", text)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _OFFSET_OR_AT.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        if name.lower() in KEYWORDS:
            continue
        following = text[match.end() :].lstrip()
        if following.startswith("("):  # a function call
            continue
        names.add(name)
    return frozenset(names)


def selector(metric: str, matchers: Mapping[str, str] | None = None, **regex: str | None) -> str:
    """``metric{a="x", b=~"y|z"}``: ``matchers`` match exactly, keyword ``regex`` values by regex.

    A ``None`` or empty regex value adds no matcher, so optional filters compose.

    >>> selector("up", {"job": "a"}, instance=None)
    'up{job="a"}'
    >>> selector("model_health_window_samples", window="1h|1d")
    'model_health_window_samples{window=~"1h|1d"}'
    """
    parts = [f'{name}="{_escape(value)}"' for name, value in (matchers or {}).items()]
    parts += [f'{name}=~"{_escape(value)}"' for name, value in regex.items() if value]
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def any_of(values: tuple[str, ...] | list[str]) -> str:
    """A regex matching exactly one of ``values`` (already free of regex metacharacters)."""
    return "|".join(values)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
