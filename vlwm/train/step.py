"""One training step's computation: which parts train, the model inputs of a batch, forward and losses.

* :func:`trainable_parts` / :func:`apply_trainable`: the ``freeze_*`` flags and ``unfreeze_schedule``.
* :func:`batch_inputs`: a collated window as model inputs.
* :func:`model_forward` and :func:`loss_terms`: the forward pass and the weighted losses of either
  stage, named by :class:`vlwm.models.VAELossWeights` / :class:`vlwm.models.WorldModelLossWeights`.
  :class:`TrainStep` joins them in one module for DistributedDataParallel; validation calls them
  separately so that one forward gives both the losses and the predictions.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from vlwm.models import VAEOutput, WorldModelOutput, vae_loss, world_model_loss
from vlwm.models.vae import occupancy_predictions
from vlwm.train.config import TrainConfig

# ---------------------------------------------------------------------------------------------
# Freezing
# ---------------------------------------------------------------------------------------------


def part_modules(model: nn.Module) -> dict[str, list[nn.Module]]:
    """The world-model parts named by the freeze flags and ``unfreeze_schedule``."""
    return {"pose": [model.pose_encoder, model.pose_decoder], "transformer": [model.transformer], "vae": [model.vae],
            "vae_encoder": [model.vae.encoder], "vae_decoder": [model.vae.decoder]}


def trainable_parts(cfg: TrainConfig, epoch: int) -> tuple[str, ...]:
    """Parts that train in (0-based) ``epoch``: the schedule's phase, else the ``freeze_*`` flags."""
    if cfg.stage == "vqvae":
        return ("vae",)
    if cfg.unfreeze_schedule:
        phase = [s for s in cfg.unfreeze_schedule if s.epoch <= epoch + 1][-1]
        return tuple(phase.trainable)
    m = cfg.model
    flags = {"vae": not m.freeze_vae, "transformer": not m.freeze_transformer, "pose": not m.freeze_pose}
    return tuple(p for p, on in flags.items() if on)


def apply_trainable(model: nn.Module, parts: tuple[str, ...], stage: str) -> None:
    """Set ``requires_grad`` so that exactly ``parts`` train (world model); the VQ-VAE trains whole."""
    if stage == "vqvae":
        model.requires_grad_(True)
        return
    model.requires_grad_(False)
    modules = part_modules(model)
    for p in parts:
        for m in modules[p]:
            m.requires_grad_(True)


def vae_trainable(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.vae.parameters())


# ---------------------------------------------------------------------------------------------
# Inputs, forward, losses
# ---------------------------------------------------------------------------------------------


def batch_inputs(batch: dict, cfg: TrainConfig, device: torch.device) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The window as model inputs: occ (B, F, X, Y, Z) int64 and the pose inputs (world model)."""
    occ = torch.cat([batch["history_occupancy"], batch["future_occupancy"]], dim=1)
    if cfg.stage == "vqvae":
        return occ.to(device).long(), None, None
    m = cfg.model
    f = min(occ.shape[1], m.transformer.num_frames + m.offset)
    rel = batch["rel_motion"] if m.motion_dims == 4 else batch["rel_poses"]
    if rel.shape[-1] != m.motion_dims:
        raise ValueError(f"model.motion_dims = {m.motion_dims} but the data give {rel.shape[-1]} components")
    return occ[:, :f].to(device).long(), rel[:, :f].to(device).float(), batch["gt_mode"][:, :f].to(device).float()


def model_forward(model: nn.Module, cfg: TrainConfig, occ: Tensor, rel_poses: Tensor | None,
                  gt_mode: Tensor | None, decode: bool = False) -> VAEOutput | WorldModelOutput:
    """The model's (teacher-forced) forward of one batch (inputs of :func:`batch_inputs`); ``decode``
    also decodes the world model's predicted codes to occupancy (``sem_pred``)."""
    if cfg.stage == "vqvae":
        return model(occ)
    return model(occ, rel_poses, gt_mode, decode=decode)


def loss_terms(model: nn.Module, cfg: TrainConfig, out: VAEOutput | WorldModelOutput,
               occ: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``(total, terms)``: the optimised scalar and the unweighted terms, logged by name.

    VQ-VAE: ``loss_recon``, ``loss_lovasz``, ``loss_embed``.  World model: ``loss_ce``,
    ``loss_plan_reg``, and ``loss_vae`` (the tokenizer's own loss, weighted by
    ``model.vae_loss_weight``) while any VAE part trains, since the world-model losses never reach
    the decoder.
    """
    m = cfg.model
    if cfg.stage == "vqvae":
        losses = vae_loss(out, occ, m.loss_weights)
        return losses.total, {"loss_recon": losses.recon, "loss_lovasz": losses.lovasz, "loss_embed": losses.embed}
    losses = world_model_loss(out, m.loss_weights)
    total, terms = losses.total, {"loss_ce": losses.ce, "loss_plan_reg": losses.plan_reg}
    if m.vae_loss_weight > 0 and vae_trainable(model):
        v = vae_loss(model.vae(occ), occ, m.vae.loss_weights)
        total = total + m.vae_loss_weight * v.total
        terms["loss_vae"] = v.total
    return total, terms


def predictions(cfg: TrainConfig, out: VAEOutput | WorldModelOutput, occ: Tensor) -> tuple[Tensor, Tensor]:
    """``(pred, target)`` (B, T, X, Y, Z) int64 class ids: the VQ-VAE's reconstruction of ``occ``, or
    the world model's next-frame predictions (``model_forward(..., decode=True)``) and frames ``offset..``."""
    if cfg.stage == "vqvae":
        return occupancy_predictions(out.logits)[0], occ
    return out.sem_pred, occ[:, cfg.model.offset:]


class TrainStep(nn.Module):
    """Forward + losses in one module, so DistributedDataParallel sees the whole computation.

    ``forward(occ, rel_poses, gt_mode)`` returns :func:`loss_terms`' ``(total, terms)``.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig):
        super().__init__()
        self.model = model
        self.cfg = cfg

    def forward(self, occ: Tensor, rel_poses: Tensor | None,
                gt_mode: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """occ : (B, F, X, Y, Z) int64 class ids; rel_poses : (B, F, motion_dims) float; gt_mode : (B, F, M)."""
        return loss_terms(self.model, self.cfg, model_forward(self.model, self.cfg, occ, rel_poses, gt_mode), occ)


def autocast_context(cfg: TrainConfig, device: torch.device):
    """float16 / bfloat16 autocast as ``cfg`` asks, else a no-op context."""
    if cfg.fp16 is not None:
        return torch.autocast(device.type, dtype=torch.float16)
    if cfg.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
