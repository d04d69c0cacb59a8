"""Tiny synthetic recordings for training tests (the tests/data helpers, 20 x 20 x 8 grid)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _data_helpers():
    spec = importlib.util.spec_from_file_location("_vlwm_data_conftest", REPO / "tests" / "data" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Two 30-frame sequences (a turning drone, a straight rover) on the tiny grid of config/tiny_dataset.py."""
    helpers = _data_helpers()
    root = tmp_path_factory.mktemp("tiny_data")
    helpers.write_sequence(root, "drone_a", n=30, agent="drone", turn_rate=0.1, masks=False)
    helpers.write_sequence(root, "rover_a", n=30, agent="rover", speed=1.0, masks=False)
    return root


def run_train(*args: str, timeout: float = 120, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """The real entry point, ``python train.py …``, in a subprocess from the repository root."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def train_cli():
    """``train_cli(*args)`` runs ``python train.py *args`` and returns the CompletedProcess."""
    return run_train


def scalars(work_dir: Path, tag: str = "train") -> dict[int, dict]:
    """The last logged scalars per global step of a run's ``scalars.jsonl``."""
    import json

    out = {}
    for line in (Path(work_dir) / "scalars.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["tag"] == tag:
            out[row["step"]] = row
    return out


@pytest.fixture
def read_scalars():
    return scalars
