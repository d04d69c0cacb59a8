"""Run logging on rank 0: text log, ``scalars.jsonl``, TensorBoard, optional Weights & Biases."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Mapping

from vlwm.train.config import LogConfig

LOGGER_NAME = "vlwm.train"


class RunLogger:
    """Writes scalars to every configured sink; a no-op on ranks other than 0."""

    def __init__(self, work_dir: Path, log_config: LogConfig, enabled: bool, run_config: dict):
        self.enabled = enabled
        self.log = logging.getLogger(LOGGER_NAME)
        self.tb = self.wandb = self.jsonl = None
        if not enabled:
            return
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        for h in (logging.FileHandler(work_dir / "train.log"), logging.StreamHandler(sys.stdout)):
            h.setFormatter(fmt)
            self.log.addHandler(h)
        kinds = {h.type: h for h in log_config.hooks}
        self.jsonl = open(work_dir / "scalars.jsonl", "a")
        if "TensorboardLoggerHook" in kinds:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise RuntimeError("log_config has TensorboardLoggerHook but the 'tensorboard' package is missing: "
                                   "pip install tensorboard (or remove the hook)") from err
            self.tb = SummaryWriter(str(work_dir / "tf_logs"))
        if "WandbLoggerHook" in kinds:
            try:
                import wandb
            except ImportError as err:
                raise RuntimeError("log_config has WandbLoggerHook but 'wandb' is not installed") from err
            self.wandb = wandb.init(config=run_config, dir=str(work_dir), **(kinds["WandbLoggerHook"].init_kwargs or {}))

    def info(self, msg: str) -> None:
        if self.enabled:
            self.log.info(msg)

    def scalars(self, tag: str, values: Mapping[str, float], step: int) -> None:
        """Record ``values`` (name -> number) under ``tag`` ('train' / 'val') at ``step`` (global iteration)."""
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"tag": tag, "step": step, **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{tag}/{k}", v, step)
        if self.wandb is not None:
            self.wandb.log({f"{tag}/{k}": v for k, v in values.items()}, step=step)

    def image(self, tag: str, image, step: int) -> None:
        """Record a (3, H, W) uint8 image (TensorBoard; W&B when configured)."""
        if not self.enabled:
            return
        if self.tb is not None:
            self.tb.add_image(tag, image, step, dataformats="CHW")
        if self.wandb is not None:
            import wandb

            self.wandb.log({tag: wandb.Image(image.transpose(1, 2, 0))}, step=step)

    def close(self) -> None:
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)
        if self.jsonl is not None:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
