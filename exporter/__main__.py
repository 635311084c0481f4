"""``python -m exporter``: the ``model-health`` command line."""

from exporter.cli import main

main()
