"""Checkpoints of the motion-aware world model: weights together with the config that builds them.

File layout (``torch.save`` of a dict of plain types and tensors, readable with
``torch.load(weights_only=True)``)::

    {"format": "vlwm.motion_world_model", "version": 1,
     "config": MotionWorldModelConfig.to_dict(), "state_dict": {...}, "extra": {...}}

:func:`load_motion_checkpoint` rebuilds the model from the stored config and loads the weights
strictly; every failure names the file and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from vlwm.models.motion_config import MotionWorldModelConfig
from vlwm.models.motion_world_model import MotionWorldModel

#: The ``format`` tag of a motion-world-model checkpoint.
CHECKPOINT_FORMAT = "vlwm.motion_world_model"
CHECKPOINT_VERSION = 1


class MotionCheckpointError(ValueError):
    """A file that is not a usable motion-world-model checkpoint (the message says why and what to do)."""


def save_motion_checkpoint(model: MotionWorldModel, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s config and weights (and ``extra``: plain types only, e.g. step, metrics) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": model.cfg.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "extra": dict(extra or {})}, path)
    return path


def load_motion_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                           ) -> tuple[MotionWorldModel, dict[str, Any]]:
    """The model stored in ``path`` (built from its config, weights loaded strictly) and its ``extra`` dict."""
    path = Path(path)
    if not path.is_file():
        raise MotionCheckpointError(f"{path}: no such checkpoint file; pass the .pt written by save_motion_checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:     # unpickling errors come in many types; report them all the same way
        raise MotionCheckpointError(f"{path}: cannot be read as a weights-only torch checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise MotionCheckpointError(f"{path}: not a motion-world-model checkpoint (format {found!r}, expected "
                                    f"{CHECKPOINT_FORMAT!r}); OccWorld checkpoints load with vlwm.models.read_checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise MotionCheckpointError(f"{path}: checkpoint version {ckpt.get('version')}, this code reads "
                                    f"{CHECKPOINT_VERSION}")
    try:
        cfg = MotionWorldModelConfig.from_dict(ckpt["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MotionCheckpointError(f"{path}: stored config is invalid: {exc}") from exc
    model = MotionWorldModel(cfg)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (KeyError, RuntimeError) as exc:
        raise MotionCheckpointError(f"{path}: weights do not fit the stored config: {exc}") from exc
    return model.to(map_location), dict(ckpt.get("extra", {}))
