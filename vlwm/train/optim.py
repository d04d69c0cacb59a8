"""Optimisation: AdamW, the per-iteration warmup + cosine schedule, and one optimizer step.

Official settings (SPEC §5): AdamW over all parameters in one group (frozen ones never get
gradients), timm ``CosineLRScheduler`` semantics with the warmup counted inside the cosine period,
gradient clipping by total norm, dynamic loss scaling under float16.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vlwm.train.config import TrainConfig


def lr_factor(it: int, total: int, warmup: int, base_lr: float, min_lr: float, warmup_start: float) -> float:
    """LR at iteration ``it`` divided by ``base_lr``: linear warmup from ``warmup_start``, then cosine to
    ``min_lr`` over ``total`` iterations (timm CosineLRScheduler, warmup inside the period)."""
    if it < warmup:
        lr = warmup_start + it * (base_lr - warmup_start) / warmup
    elif it >= total:
        lr = min_lr
    else:
        lr = min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * it / total))
    return lr / base_lr


def build_optimizer(model: nn.Module, cfg: TrainConfig, iters_per_epoch: int):
    """AdamW over all parameters (one group, as officially) and the per-iteration LambdaLR schedule."""
    o, s = cfg.optimizer, cfg.lr_config
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                  weight_decay=o.weight_decay)
    total = iters_per_epoch * cfg.max_epochs
    warmup = 0 if s.warmup is None else (s.warmup_iters if s.warmup_iters is not None else cfg.warmup_iters)
    start = s.min_lr if s.warmup_ratio is None else s.warmup_ratio * o.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(it, total, warmup, o.lr, s.min_lr, start))
    return optimizer, scheduler


def optimizer_step(model: nn.Module, cfg: TrainConfig, optimizer, scheduler, scaler) -> float:
    """One optimizer step on the accumulated gradients: unscale (float16), clip (``grad_clip``),
    step, zero the gradients, advance the schedule.  Returns the total gradient norm before clipping."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    if cfg.grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip.max_norm, cfg.grad_clip.norm_type)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])) if params \
            else torch.zeros(())
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return float(grad_norm)
