"""Run under ``torchrun``: train a tiny config, then save this rank's parameters (for test_ddp.py).

Usage: torchrun --nproc_per_node 2 ddp_worker.py CONFIG DATA_ROOT WORK_DIR
"""

import os
import sys

import torch

from vlwm.train.config import load_config
from vlwm.train.engine import train

if __name__ == "__main__":
    config, data_root, work_dir = sys.argv[1:4]
    cfg, raw = load_config(config, {"data_root": data_root, "max_epochs": 1, "frame_skip": 6})
    summary = train(cfg, work_dir, sys.argv, raw)
    rank = int(os.environ["RANK"])
    torch.save(summary.model.state_dict(), os.path.join(work_dir, f"rank{rank}.pt"))
