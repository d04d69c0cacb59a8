"""The training guide's "Debugging Data Pipeline" snippet, run as written on an aerial-grid dataset."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vlwm.gt.grid import AERIAL

REPO = Path(__file__).resolve().parents[2]
#: Verbatim from the guide (section 7, "Debugging Data Pipeline").
SNIPPET = """
from dataset.gazebo_occworld_dataset import GazeboOccWorldDataset, DatasetConfig
config = DatasetConfig(history_frames=4, future_frames=6)
ds = GazeboOccWorldDataset('data/tokyo_gazebo/', config)
print(f'Dataset size: {len(ds)}')
sample = ds[0]
print(f'History occupancy shape: {sample["history_occupancy"].shape}')
"""


def test_guide_snippet_runs_as_written(tmp_path, synth):
    """A folder laid out like the repository root (``dataset/`` and ``data/tokyo_gazebo/``) as the working directory."""
    data = tmp_path / "data" / "tokyo_gazebo"
    synth.write(data, "drone_20240101_120000", 14, grid=AERIAL)
    synth.write(data, "rover_20240101_130000", 14, grid=AERIAL, agent="rover")
    os.symlink(REPO / "dataset", tmp_path / "dataset")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", SNIPPET], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    # one drone and one rover: each split into time blocks, 11 train frames -> 2 windows each
    assert proc.stdout.splitlines() == ["Dataset size: 4", "History occupancy shape: (4, 200, 200, 121)"]
    assert "split into contiguous time blocks" in proc.stderr


def test_dataset_module_is_thin_and_exports_the_guide_names(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    import dataset.gazebo_occworld_dataset as mod
    from vlwm.data.config import DatasetConfig
    from vlwm.data.dataset import GazeboOccWorldDataset

    assert mod.DatasetConfig is DatasetConfig and mod.GazeboOccWorldDataset is GazeboOccWorldDataset
    assert len((REPO / "dataset" / "gazebo_occworld_dataset.py").read_text().splitlines()) < 40
    assert np.array_equal(DatasetConfig().grid.shape, AERIAL.shape)
