"""DDP on CPU: two gloo processes (a real ``torchrun --nproc_per_node 2``) end with identical parameters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def test_torchrun_two_cpu_processes_identical_parameters(tiny_data, tmp_path):
    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "train" / "ddp_worker.py"), str(REPO / "config" / "tiny_occworld.py"),
           str(tiny_data), str(work)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=150, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (work / "train.log").read_text()
    assert "world size 2" in log
    a = torch.load(work / "rank0.pt", weights_only=True)
    b = torch.load(work / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # each rank saw half of the 6 windows: 3 iterations per epoch
    assert "iter 3/3" in log
    saved = torch.load(work / "latest.pth", weights_only=True)["state_dict"]
    for k in a:                                               # rank 0 checkpointed what both ranks hold
        assert torch.equal(saved[k], a[k]), k
