"""Fixtures of the model tests: the official OccWorld reference outputs and comparison helpers.

The reference files (``shared/reference/occworld/``) were produced by the official code (SPEC §11);
they are ours, so they are read with ``weights_only=False``.  The world-model fixture pickles its
config as mmengine ``ConfigDict`` objects; a restricted unpickler maps that one class to a dict so
mmengine is not needed.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "occworld"


class _ConfigDict(dict):
    """Stand-in for ``mmengine.config.config.ConfigDict`` (a dict subclass) when unpickling."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("mmengine") and name == "ConfigDict":
            return _ConfigDict
        return super().find_class(module, name)


_pickle_module = types.ModuleType("occworld_fixture_pickle")
_pickle_module.Unpickler = _Unpickler
_pickle_module.load = pickle.load


def load_reference(name: str) -> dict:
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference file {path} not found (shared/ must sit beside the repository)")
    return torch.load(path, weights_only=False, pickle_module=_pickle_module)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference folder {REFERENCE} not found (shared/ must sit beside the repository)")
    return REFERENCE


@pytest.fixture(scope="session")
def vae_fixture() -> dict:
    return load_reference("vae_small_fixture.pt")


@pytest.fixture(scope="session")
def wm_fixture() -> dict:
    return load_reference("occworld_small_fixture.pt")


@pytest.fixture(scope="session")
def metric_fixture() -> dict:
    return load_reference("metric_fixture.pt")


# ---------------------------------------------------------------------------------------------
# Comparison helpers (exposed as a fixture: test modules cannot import conftest)
# ---------------------------------------------------------------------------------------------


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ (float64)."""
    b = b.double()
    return ((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item()


def assert_argmax_parity(ours: torch.Tensor, ref: torch.Tensor, tol: float, dim: int = -1) -> int:
    """Our argmax equals the reference's wherever its top-2 margin exceeds ``2 tol``; at the
    near-ties below that, our choice must score within ``2 tol`` of the reference maximum.

    ``ours`` and ``ref`` are logits whose max |difference| is known to be <= tol.  Returns the
    number of near-tie positions.
    """
    top2 = ref.topk(2, dim=dim).values
    margin = top2.select(dim, 0) - top2.select(dim, 1)
    ours_arg, ref_arg = ours.argmax(dim=dim), ref.argmax(dim=dim)
    decided = margin > 2 * tol
    assert torch.equal(ours_arg[decided], ref_arg[decided]), \
        f"{(ours_arg[decided] != ref_arg[decided]).sum().item()} argmax differences away from ties"
    chosen = ref.gather(dim, ours_arg.unsqueeze(dim)).squeeze(dim)
    assert bool((top2.select(dim, 0) - chosen <= 2 * tol).all())
    return int((~decided).sum())


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
