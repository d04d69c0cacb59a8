"""Fixtures of the evaluation tests: the official metric outputs (``metric_fixture.pt``, SPEC §11)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "occworld"


@pytest.fixture(scope="session")
def metric_fixture() -> dict:
    """The reference ``multi_step_MeanIou`` / ``PlanningMetric`` inputs and outputs (ours: weights_only=False)."""
    path = REFERENCE / "metric_fixture.pt"
    if not path.is_file():
        pytest.skip(f"reference file {path} not found (shared/ must sit beside the repository)")
    return torch.load(path, weights_only=False)
