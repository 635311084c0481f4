"""The configuration of every long-running command (moved here from ``exporter/config.py``).

Transitional: the whole module now lives in ``generators.py`` so that its history follows the
largest piece; the next commit splits it into one module per role.
"""

from exporter.config.generators import *  # noqa: F403
