"""Fixtures of the evaluation tests: the official metric outputs (``metric_fixture.pt``, SPEC §11)."""

from __future__ import annotations

import pytest

from tests.helpers.reference import load_reference


@pytest.fixture(scope="session")
def metric_fixture() -> dict:
    """The reference ``multi_step_MeanIou`` / ``PlanningMetric`` inputs and outputs (ours: weights_only=False)."""
    return load_reference("metric_fixture.pt")
