"""Training loss of the motion-aware world model, returned as a named tuple.

``total = ce · CE(voxels) + lovasz · Lovász-softmax + pose · pose error``, weights in
:class:`~vlwm.models.motion_config.MotionLossConfig`:

* **CE** over every voxel of every future frame, optional per-label weights, and an optional
  extra weight (``changed_weight``) on voxels whose true label differs from the ego-warp prior —
  the only voxels the residual has to change.  Normalised by the sum of the voxel weights.
* **Lovász-softmax** (:func:`vlwm.models.losses.lovasz_loss`) over the batch's voxels, optional.
* **Pose**: mean over samples and future frames of ``|Δ(x, y, z)|₂ + yaw_weight · |Δyaw|`` between
  the pose head's frames and the true ones (metres; yaw wrapped to [-π, π)).

All terms are float32 (also under autocast).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vlwm.models.losses import lovasz_loss
from vlwm.models.motion_config import MotionLossConfig
from vlwm.models.motion_world_model import MotionForecast


class MotionLosses(NamedTuple):
    total: Tensor
    """() weighted sum (optimised)."""
    ce: Tensor
    """() unweighted voxel cross-entropy."""
    lovasz: Tensor
    """() unweighted Lovász-softmax (0 when its weight is 0: not computed)."""
    pose: Tensor
    """() unweighted pose error (m-equivalent); 0 without true frames."""


def pose_error(pred_frames: Tensor, true_frames: Tensor, yaw_weight: float) -> Tensor:
    """() mean of ``|Δxyz| + yaw_weight · |wrap(Δyaw)|`` over (B, F); inputs (B, F, 4)."""
    d = pred_frames.double() - true_frames.double()
    yaw = torch.remainder(d[..., 3] + math.pi, 2 * math.pi) - math.pi
    return (torch.linalg.vector_norm(d[..., :3], dim=-1) + yaw_weight * yaw.abs()).mean().float()


def motion_world_model_loss(out: MotionForecast, target: Tensor, true_frames: Tensor | None = None,
                            cfg: MotionLossConfig = MotionLossConfig()) -> MotionLosses:
    """Loss of a forecast against the true future.

    Parameters
    ----------
    out : the model's :class:`MotionForecast`.
    target : (B, F, X, Y, Z) integer true labels of the future frames (each in its own grid frame).
    true_frames : (B, F, 4) true future grid-frame poses, or None to skip the pose term.
    cfg : weights.
    """
    k = out.logits.shape[-1]
    cfg.validate(k)
    if tuple(target.shape) != tuple(out.logits.shape[:-1]):
        raise ValueError(f"motion_world_model_loss: target {tuple(target.shape)} does not match the logits "
                         f"{tuple(out.logits.shape[:-1])} (B, F, X, Y, Z)")
    # Layout (N, K, Z, X, Y), N = B*F: for the model's logits a view of their own contiguous
    # storage (no copy of the largest tensor); the labels follow as (N, Z, X, Y).
    labels = target.long().flatten(0, 1).permute(0, 3, 1, 2)
    logits = out.logits.float().flatten(0, 1).permute(0, 4, 3, 1, 2)
    weight = None if cfg.class_weights is None else torch.tensor(cfg.class_weights, dtype=torch.float32,
                                                                 device=logits.device)
    per_voxel = F.cross_entropy(logits, labels, reduction="none")           # (N, Z, X, Y)
    w = torch.ones_like(per_voxel) if weight is None else weight[labels]
    if cfg.changed_weight != 1.0:
        w = w * torch.where(labels != out.prior.flatten(0, 1).permute(0, 3, 1, 2), cfg.changed_weight, 1.0)
    ce = (per_voxel * w).sum() / w.sum().clamp_min(1e-12)
    zero = ce.new_zeros(())
    lov = lovasz_loss(out.logits, target.long()) if cfg.lovasz > 0 else zero
    pose = pose_error(out.pred_frames, true_frames, cfg.yaw_weight) if true_frames is not None else zero
    total = cfg.ce * ce + cfg.lovasz * lov + cfg.pose * pose
    return MotionLosses(total, ce, lov, pose)
