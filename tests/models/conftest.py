"""Fixtures of the model tests: the official OccWorld reference outputs and comparison helpers
(loading and comparisons live in :mod:`tests.helpers.reference`)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

from tests.helpers.reference import assert_argmax_parity, load_reference, max_abs, rel_err
from tests.helpers.shared import REFERENCE, require_path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return require_path(REFERENCE, "reference folder", directory=True)


@pytest.fixture(scope="session")
def vae_fixture() -> dict:
    return load_reference("vae_small_fixture.pt")


@pytest.fixture(scope="session")
def wm_fixture() -> dict:
    return load_reference("occworld_small_fixture.pt")


@pytest.fixture(scope="session")
def metric_fixture() -> dict:
    return load_reference("metric_fixture.pt")


@pytest.fixture(scope="session")
def cmp():
    return types.SimpleNamespace(max_abs=max_abs, rel_err=rel_err, argmax=assert_argmax_parity)


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """Run the model tests on one intra-op thread.

    The tiny models launch thousands of small kernels; with two OpenMP threads per process, a
    busy core (``pytest -n 2``, other jobs) turns every parallel region into a scheduling wait —
    measured 10-70x slowdowns.  One thread is as fast on idle cores and robust on busy ones.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
