"""I/O and runtime of model-health-exporter: config, sources, collectors, commands."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("model-health-exporter")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
