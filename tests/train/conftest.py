"""Tiny synthetic recordings for training tests (the tests/data helpers, 20 x 20 x 8 grid)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_runs import write_tiny_recordings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Two 30-frame sequences (a turning drone, a straight rover) on the tiny grid of config/tiny_dataset.py."""
    return write_tiny_recordings(tmp_path_factory.mktemp("tiny_data"), masks=False)


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
