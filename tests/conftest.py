"""Shared test settings: hypothesis profiles sized for a 2-core CI machine."""

from hypothesis import HealthCheck, settings

from tests.support import figures

settings.register_profile("default", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


def pytest_configure(config):  # type: ignore[no-untyped-def]
    # The reliability suite's figures table (tests/support/figures.py): registered here
    # because an xdist controller never loads the conftest files of sub-directories.
    figures.register(config)
