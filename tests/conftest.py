"""Shared test fixtures: tiny seeded scenes and the location of the shared reference data.

Also the option ``--require-reference``: missing reference files (``../shared``) fail the tests
that need them instead of skipping them, as they do when the environment has ``CI=true``
(:mod:`tests.helpers.shared`).
"""

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import shared
from tests.helpers.shared import PLATEAU_DIR, require_path


def pytest_addoption(parser):
    parser.addoption("--require-reference", action="store_true", default=False,
                     help="fail (instead of skip) the tests whose reference files under ../shared are missing; "
                          "implied by the environment variable CI=true")


def pytest_configure(config):
    shared.REQUIRE_OPTION = bool(config.getoption("--require-reference"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def plateau_dir() -> Path:
    return require_path(PLATEAU_DIR, "PLATEAU samples", directory=True)
