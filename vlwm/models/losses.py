"""Training losses of the two OccWorld stages (SPEC §4), returned as named tuples.

* VQ-VAE: ``total = 10 · CE(voxel classes) + Lovász-softmax + VQ embedding loss``
  (:func:`vae_loss`, official ``ReconLoss`` / ``LovaszLoss`` / ``VQVAEEmbedLoss``).
* World model: ``total = CE(next-frame codes) + 0.1 · plan regression`` (:func:`world_model_loss`,
  official ``CeLoss`` / ``PlanRegLossLidar``).

The named tuples carry the *unweighted* terms (what the official ``MultiLoss`` logs) and the
weighted ``total`` that is optimised.  All terms are computed in float32 (also under autocast).
No class weights, no free-space weighting, no visibility masks — as officially.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vlwm.models.vae import VAEOutput
from vlwm.models.world_model import RolloutOutput, WorldModelOutput

_EXACT_FLOAT32_COUNT = 2 ** 24
"""Voxel counts from which float32 cumulative sums of 0/1 values are no longer exact."""

# ---------------------------------------------------------------------------------------------
# Weights and results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VAELossWeights:
    """Weights of the VQ-VAE loss terms (``config/train_vqvae.py``)."""

    recon: float = 10.0
    """Voxel cross-entropy (``ReconLoss``)."""
    lovasz: float = 1.0
    """Lovász-softmax (``LovaszLoss``)."""
    embed: float = 1.0
    """Quantiser loss (``VQVAEEmbedLoss``)."""


@dataclass(frozen=True)
class WorldModelLossWeights:
    """Weights of the world-model loss terms (``config/train_occworld.py``)."""

    ce: float = 1.0
    """Next-frame code cross-entropy (``CeLoss``)."""
    plan_reg: float = 0.1
    """Trajectory regression (``PlanRegLossLidar``)."""


class VAELosses(NamedTuple):
    total: Tensor
    """() weighted sum (optimised)."""
    recon: Tensor
    """() unweighted voxel cross-entropy."""
    lovasz: Tensor
    """() unweighted Lovász-softmax."""
    embed: Tensor
    """() unweighted VQ loss."""


class WorldModelLosses(NamedTuple):
    total: Tensor
    """() weighted sum (optimised)."""
    ce: Tensor
    """() unweighted code cross-entropy."""
    plan_reg: Tensor
    """() unweighted plan regression."""


# ---------------------------------------------------------------------------------------------
# Terms
# ---------------------------------------------------------------------------------------------


def voxel_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over all voxels (``ReconLoss``, no ignore label in practice).

    logits : (..., C) float; labels : (...) int64 in [0, C).  Returns () float32.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


def code_cross_entropy(code_logits: Tensor, code_labels: Tensor) -> Tensor:
    """Mean cross-entropy over all tokens (``CeLoss``).

    code_logits : (B, F, K, h, w) or (N, K, h, w) float; code_labels : (B, F, h, w) or (N, h, w).
    """
    if code_logits.dim() == 5:
        code_logits, code_labels = code_logits.flatten(0, 1), code_labels.flatten(0, 1)
    return F.cross_entropy(code_logits.float(), code_labels)


def lovasz_softmax(probs: Tensor, labels: Tensor) -> Tensor:
    """Lovász-softmax over the classes present in ``labels`` (Berman et al. 2018; ``per_image=False``,
    ``classes='present'``, no ignore label), as in the official ``lovasz_softmax_flat``.

    Parameters
    ----------
    probs : (P, C) float class probabilities.
    labels : (P,) int64 class ids.

    Returns
    -------
    () float: mean over present classes of the Lovász extension of the Jaccard loss (0 if P = 0).
    """
    if probs.numel() == 0:
        return probs.sum() * 0.0
    present = torch.bincount(labels, minlength=probs.shape[1]).nonzero().flatten().tolist()
    losses = []
    for c in present:
        fg = (labels == c).to(probs.dtype)
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


def _lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension w.r.t. sorted errors (Alg. 1 of the paper).  (P,) -> (P,)."""
    dtype = gt_sorted.dtype
    if gt_sorted.numel() >= _EXACT_FLOAT32_COUNT:  # float32 counts stop being exact (e.g. 121-level grids)
        gt_sorted = gt_sorted.double()
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard.to(dtype)


def lovasz_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``LovaszLoss`` of voxel logits: softmax over classes, all voxels of the batch together.

    logits : (..., C) float; labels : (...) int64.
    """
    probs = logits.reshape(-1, logits.shape[-1]).float().softmax(dim=-1)
    return lovasz_softmax(probs, labels.reshape(-1))


def plan_regression(pose_decoded: Tensor, rel_poses: Tensor, gt_mode: Tensor,
                    kind: Literal["l2", "l1"] = "l2") -> Tensor:
    """``PlanRegLossLidar``: error of cumulative trajectories, for the commanded mode only.

    Predicted per-mode displacements and ground-truth displacements are summed over frames into
    positions; the per-frame error is the Euclidean distance (``l2``; summed absolute components
    for ``l1``) weighted by the one-hot mode, summed and divided by B · F.

    Parameters
    ----------
    pose_decoded : (B, F, M, P) float predicted displacements per mode.
    rel_poses : (B, F, P) float ground-truth displacements.
    gt_mode : (B, F, M) one-hot.
    """
    b, f, m, _ = pose_decoded.shape
    pred = pose_decoded.float().transpose(1, 2).cumsum(dim=2)                        # (B, M, F, P)
    gt = rel_poses.float().unsqueeze(1).expand(b, m, f, rel_poses.shape[-1]).cumsum(dim=2)
    weight = gt_mode.float().transpose(1, 2)                                           # (B, M, F)
    if kind == "l2":
        err = torch.sqrt(((pred - gt) ** 2).sum(-1)) * weight
    elif kind == "l1":
        err = (pred - gt).abs() * weight.unsqueeze(-1)
    else:
        raise ValueError(f"plan regression kind must be 'l2' or 'l1', got {kind!r}")
    return err.sum() / b / f


# ---------------------------------------------------------------------------------------------
# Stage losses
# ---------------------------------------------------------------------------------------------


def vae_loss(out: VAEOutput, occ: Tensor, weights: VAELossWeights = VAELossWeights()) -> VAELosses:
    """VQ-VAE loss of a reconstruction.

    Parameters
    ----------
    out : VAEOutput of ``occ``.
    occ : (B, F, H, W, D) int64 class ids (the input is also the target).
    """
    recon = voxel_cross_entropy(out.logits, occ)
    lov = lovasz_loss(out.logits, occ)
    embed = out.embed_loss.float()
    total = weights.recon * recon + weights.lovasz * lov + weights.embed * embed
    return VAELosses(total, recon, lov, embed)


def world_model_loss(out: WorldModelOutput | RolloutOutput,
                     weights: WorldModelLossWeights = WorldModelLossWeights()) -> WorldModelLosses:
    """World-model loss of a teacher-forced pass (or of a rollout, as the evaluation logs it)."""
    ce = code_cross_entropy(out.code_logits, out.code_labels)
    reg = plan_regression(out.pose_decoded, out.target_rel_poses, out.target_gt_mode)
    return WorldModelLosses(weights.ce * ce + weights.plan_reg * reg, ce, reg)
