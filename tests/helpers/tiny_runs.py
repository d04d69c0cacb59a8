"""The entry-point scripts in a subprocess, and a tiny world model trained for one epoch on tiny recordings.

Shared by the evaluation and visualisation smoke tests (``tests/eval``, ``tests/viz``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.recordings import write_sequence

REPO = Path(__file__).resolve().parents[2]

#: Options that keep the tiny runs to a few windows (``--cfg-options``).
QUICK_OPTIONS = ("frame_skip=6",)


def run_script(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python <script> *args`` from the repository root (one OpenMP thread); the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def write_tiny_recordings(root: Path, **kw) -> Path:
    """Two 30-frame sequences in ``root`` (a turning drone, a straight rover); ``kw`` goes to
    :func:`tests.helpers.recordings.write_sequence` (masks, images, ...).  Returns ``root``."""
    write_sequence(root, "drone_a", n=30, agent="drone", turn_rate=0.1, **kw)
    write_sequence(root, "rover_a", n=30, agent="rover", speed=1.0, **kw)
    return root


def train_tiny_world_model(data_root: Path, work_dir: Path) -> Path:
    """Train ``config/tiny_occworld.py`` for one epoch on ``data_root``; the path of its ``latest.pth``."""
    from vlwm.train.config import load_config
    from vlwm.train.engine import train

    cfg, raw = load_config(REPO / "config" / "tiny_occworld.py",
                           {"data_root": str(data_root), "max_epochs": 1, "frame_skip": 6})
    train(cfg, work_dir, ["test"], raw)
    return Path(work_dir) / "latest.pth"
