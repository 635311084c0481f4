"""I/O and runtime of model-health-exporter: config, sources, collectors, commands."""


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importlib.metadata costs tens of
    # milliseconds, which every ``model-health`` command would pay at start-up.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("model-health-exporter")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
