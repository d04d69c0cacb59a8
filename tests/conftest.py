"""Shared test fixtures: tiny seeded scenes and the location of the shared reference data."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PLATEAU_DIR = SHARED / "data" / "plateau"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def plateau_dir() -> Path:
    if not PLATEAU_DIR.is_dir():
        pytest.skip(f"PLATEAU samples not found at {PLATEAU_DIR} (shared/ must sit beside the repository)")
    return PLATEAU_DIR
