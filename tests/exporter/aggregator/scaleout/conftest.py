"""The three model versions' profiles every scale-out test module folds against (one set per module)."""

from __future__ import annotations

import pytest

from tests.exporter.aggregator.scaleout.traffic import write_profiles


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    return write_profiles(tmp_path_factory.mktemp("profiles"))
