"""Rendering generated queries as each controller does, for the constructs the generator uses.

Flagger runs its query through Go's ``text/template`` with ``missingkey=error`` and functions
``name``, ``namespace``, ``target``, ``service``, ``ingress``, ``interval`` and ``variables``
(pkg/metrics/observers/render.go); Argo Rollouts substitutes ``{{args.NAME}}``; prometheus-adapter
fills ``<<.Series>>`` and ``<<.LabelMatchers>>`` (and ``<<.GroupBy>>``) with Go templates whose
delimiters are ``<<`` and ``>>``. The generator uses only ``{{ variables.NAME }}``,
``{{args.NAME}}`` and the adapter's two fields; anything else left in a query after rendering
fails here, so a construct this stand-in cannot render is never passed off as rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_FLAGGER_VARIABLE = re.compile(r"\{\{\s*variables\.(\w+)\s*\}\}")
_ARGO_ARG = re.compile(r"\{\{args\.([\w-]+)\}\}")


def _no_template_left(text: str, opener: str) -> str:
    assert opener not in text, f"a template construct the stand-in does not render: {text!r}"
    return text


def flagger(query: str, variables: Mapping[str, str]) -> str:
    """As Flagger renders ``query`` for a Canary metric with these ``templateVariables``.

    A missing variable raises ``KeyError``, as ``missingkey=error`` fails Flagger's render.
    """
    return _no_template_left(_FLAGGER_VARIABLE.sub(lambda m: variables[m.group(1)], query), "{{")


def argo(query: str, args: Mapping[str, str]) -> str:
    return _no_template_left(_ARGO_ARG.sub(lambda m: args[m.group(1)], query), "{{")


def adapter(metrics_query: str, series: str, label_matchers: str) -> str:
    text = metrics_query.replace("<<.Series>>", series).replace("<<.LabelMatchers>>", label_matchers)
    return _no_template_left(text, "<<")
