"""The training loop: plain functions, read top to bottom.

``train(cfg, work_dir)`` → set up (distributed, seeds, run record) → build the model and load
weights → optimizer, schedule, scaler → data → resume → epochs of iterations (forward, loss,
backward with accumulation, clip, step, schedule, log) → validation → checkpoints.  SIGTERM /
SIGINT stop at the next optimizer step, save ``latest.pth`` and return.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from vlwm.data.dataset import collate_fn
from vlwm.data.mixing import ConcatDataset, build_dataset
from vlwm.models import build_vqvae, build_world_model, vae_loss, world_model_loss
from vlwm.models.losses import VAELossWeights, WorldModelLossWeights
from vlwm.models.vae import occupancy_predictions
from vlwm.train.checkpoint import (BEST, LATEST, atomic_save, load_training_state, load_weights,
                                   save_training_checkpoint, training_state)
from vlwm.train.config import TrainConfig
from vlwm.train.logger import RunLogger
from vlwm.train.metrics import bev_pair, forecast_metric

# ---------------------------------------------------------------------------------------------
# Distributed set-up
# ---------------------------------------------------------------------------------------------


def setup_distributed(device_name: str | None) -> tuple[int, int, torch.device]:
    """(rank, world_size, device).  Under ``torchrun`` (WORLD_SIZE > 1): NCCL on GPU, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    name = device_name or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        device = torch.device("cuda", local if device.index is None else device.index)
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Model, freezing, losses
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


class TrainStep(nn.Module):
    """Forward + losses in one module, so DistributedDataParallel sees the whole computation.

    ``forward(batch)`` returns ``(total, terms)``: the optimised scalar and the unweighted terms.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig):
        super().__init__()
        self.model = model
        self.stage = cfg.stage
        self.cfg = cfg

    def forward(self, occ: Tensor, rel_poses: Tensor | None, gt_mode: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """occ : (B, F, X, Y, Z) int64 class ids; rel_poses : (B, F, motion_dims) float; gt_mode : (B, F, M)."""
        m = self.cfg.model
        if self.stage == "vqvae":
            losses = vae_loss(self.model(occ), occ, VAELossWeights(*m.loss_weights))
            return losses.total, {"loss_recon": losses.recon, "loss_lovasz": losses.lovasz, "loss_embed": losses.embed}
        losses = world_model_loss(self.model(occ, rel_poses, gt_mode), WorldModelLossWeights(*m.loss_weights))
        total, terms = losses.total, {"loss_ce": losses.ce, "loss_plan_reg": losses.plan_reg}
        if m.vae_loss_weight > 0 and vae_trainable(self.model):      # the world-model losses never reach the decoder
            v = vae_loss(self.model.vae(occ), occ)
            total = total + m.vae_loss_weight * v.total
            terms["loss_vae"] = v.total
        return total, terms


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


# ---------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------


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


def autocast_context(cfg: TrainConfig, device: torch.device):
    if cfg.fp16 is not None:
        return torch.autocast(device.type, dtype=torch.float16)
    if cfg.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def epoch_indices(dataset, epoch: int, seed: int, rank: int, world: int) -> list[int]:
    """This rank's sample order of ``epoch``: DistributedSampler (shuffled, seed + epoch), or the
    weighted draws of a ConcatDataset, split across ranks."""
    if isinstance(dataset, ConcatDataset):
        g = torch.Generator().manual_seed(seed + epoch)
        draws = list(dataset.sampler(generator=g))
        per_rank = math.ceil(len(draws) / world)
        draws += draws[: per_rank * world - len(draws)]
        return draws[rank::world]
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def make_loader(dataset, indices: list[int], cfg: TrainConfig) -> DataLoader:
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=indices, num_workers=cfg.num_workers,
                      collate_fn=collate_fn, drop_last=False)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def validate(model: nn.Module, dataset, cfg: TrainConfig, device: torch.device) -> tuple[dict[str, float], np.ndarray | None]:
    """Teacher-forced validation (SPEC §5): per-step mIoU / IoU of the reconstruction (VQ-VAE) or
    of the next-frame predictions (world model), and the mean loss terms; plus a BEV image
    (3, H, W) uint8 of the first sample's first frame, target beside prediction."""
    model.eval()
    step = TrainStep(model, cfg)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
                        collate_fn=collate_fn)
    metric, sums, n, image = None, {}, 0, None
    for i, batch in enumerate(loader):
        if cfg.evaluation.max_batches is not None and i >= cfg.evaluation.max_batches:
            break
        occ, rel, mode = batch_inputs(batch, cfg, device)
        with autocast_context(cfg, device):
            if cfg.stage == "vqvae":
                pred, target = occupancy_predictions(model(occ).logits)[0], occ
            else:
                pred, target = model(occ, rel, mode, decode=True).sem_pred, occ[:, cfg.model.offset:]
            _, terms = step(occ, rel, mode)
        metric = metric or forecast_metric(target.shape[1])
        metric.update(pred, target)
        if image is None:
            image = bev_pair(target[0, 0], pred[0, 0])
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    model.train()
    if metric is None:
        return {}, None
    res = metric.compute()
    res = res if isinstance(res, dict) else res.to_dict()           # vlwm.eval's OccForecastResult
    out = {f"{k}_{t}": float(v) for k in ("miou", "iou") for t, v in enumerate(res[k])}
    for name in ("miou_at", "iou_at"):                              # per reported horizon ("1s", "2s", …)
        out.update({f"{name}_{h}": float(v) for h, v in (res.get(name) or {}).items()})
    out["miou"] = float(np.mean(res["miou"]))
    out["iou"] = float(np.mean(res["iou"]))
    out.update({k: v / n for k, v in sums.items()})
    return out, image


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop saves and returns at the next optimizer step."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item())


def write_run_record(work_dir: Path, cfg: TrainConfig, raw_config: Any, argv: list[str]) -> None:
    """The resolved config (python and JSON), the command line and the versions, into ``work_dir``."""
    import vlwm

    if raw_config is not None:
        try:
            raw_config.dump(str(work_dir / "config.py"))
        except Exception as err:                    # formatting trouble must not stop a run
            (work_dir / "config.py.error").write_text(str(err))
    (work_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    (work_dir / "cmdline.txt").write_text(" ".join([sys.executable, *argv]) + "\n")
    meta = {"vlwm": getattr(vlwm, "__version__", "unknown"), "torch": torch.__version__, "python": sys.version,
            "host": socket.gethostname(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    (work_dir / "version.json").write_text(json.dumps(meta, indent=1))


def train(cfg: TrainConfig, work_dir: str | Path, argv: list[str] | None = None, raw_config: Any = None) -> dict:
    """Train as ``cfg`` says; returns a summary: ``last`` (last logged scalars), ``val``,
    ``best_val_miou``, ``stopped_by`` (signal number or None) and ``model`` (the trained module)."""
    rank, world, device = setup_distributed(cfg.device)
    work_dir = Path(work_dir)
    if rank == 0:
        work_dir.mkdir(parents=True, exist_ok=True)
        write_run_record(work_dir, cfg, raw_config, argv or sys.argv)
    log = RunLogger(work_dir, cfg.log_config, rank == 0, cfg.to_dict())
    seed_everything(cfg.seed)
    log.info(f"stage {cfg.stage}, grid {cfg.grid.shape}, device {device}, world size {world}")

    # ---- model and initial weights
    model_args = cfg.model_config()
    model = (build_vqvae if cfg.stage == "vqvae" else build_world_model)(model_args).to(device)
    resume = cfg.resume_from
    if resume is None and (work_dir / LATEST).exists():
        resume = str(work_dir / LATEST)                        # official: auto-resume from the work dir
    if resume is None and cfg.load_from:
        log.info(f"load_from:\n{load_weights(model, cfg.load_from)}")
    elif resume is None and cfg.stage == "world_model" and cfg.model.vqvae_ckpt:
        log.info(f"vqvae_ckpt:\n{load_weights(model, cfg.model.vqvae_ckpt, into_vae=True)}")

    # ---- data
    train_set = build_dataset(cfg.dataset_dict("train"))
    val_set = None
    if cfg.evaluation.interval > 0:
        try:
            val_set = build_dataset(cfg.dataset_dict("val"))
        except ValueError as err:
            log.info(f"no validation: {err}")
        if val_set is not None and len(val_set) == 0:
            val_set = None
    if len(train_set) == 0:
        raise ValueError(f"the training set is empty ({cfg.dataset_dict('train')})")
    iters_per_epoch = math.ceil(len(epoch_indices(train_set, 0, cfg.seed, rank, world)) / cfg.batch_size)
    steps_per_epoch = math.ceil(iters_per_epoch / cfg.accumulate_steps)

    # ---- optimisation state
    optimizer, scheduler = build_optimizer(model, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if cfg.fp16 is not None else None
    start_epoch, global_iter, skip, best = 0, 0, 0, float("-inf")
    if resume is not None:
        state = load_training_state(resume, model, optimizer, scheduler, scaler)
        start_epoch, global_iter, skip, best = (state["epoch"], state["global_iter"], state["iter_in_epoch"],
                                                state["best_val_miou"])
        log.info(f"resumed from {resume}: epoch {start_epoch}, iteration {global_iter}, +{skip} batches")
        if start_epoch >= cfg.max_epochs:
            log.info(f"WARNING: {resume} has already completed {start_epoch} epochs >= max_epochs = {cfg.max_epochs}: "
                     "nothing to train.  To fine-tune from these weights use load_from / --load-from.")
    config_dict = cfg.to_dict()
    meta = {"vlwm_stage": cfg.stage, "world_size": world}

    def save(epoch_done: int, iter_in_epoch: int, epoch_file: bool) -> None:
        if rank != 0:
            return
        state = training_state(model, optimizer, scheduler, scaler, epoch_done, global_iter, iter_in_epoch, best,
                               config_dict, model_args, meta)
        path = save_training_checkpoint(work_dir, state, epoch_file, cfg.checkpoint_config.max_keep_ckpts)
        log.info(f"saved {path}")

    # ---- epochs
    parts, step_module = None, None
    summary: dict[str, Any] = {"stopped_by": None}
    with StopFlag() as stop:
        for epoch in range(start_epoch, cfg.max_epochs):
            new_parts = trainable_parts(cfg, epoch)
            if new_parts != parts:                                   # (re)wrap: DDP buckets follow requires_grad
                parts = new_parts
                apply_trainable(model, parts, cfg.stage)
                step_module = TrainStep(model, cfg)
                if world > 1:
                    step_module = DistributedDataParallel(step_module, device_ids=[device.index] if device.type ==
                                                          "cuda" else None, find_unused_parameters=cfg.stage != "vqvae")
                n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
                log.info(f"epoch {epoch + 1}: trainable {list(parts)} ({n_train:,} parameters)")
            indices = epoch_indices(train_set, epoch, cfg.seed, rank, world)[skip * cfg.batch_size:]
            loader = make_loader(train_set, indices, cfg)
            model.train()
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.max_epochs}", disable=rank != 0, initial=skip,
                       total=iters_per_epoch, leave=False, file=sys.stderr)
            done = skip
            for batch in bar:
                i = done
                done += 1
                last_micro = done % cfg.accumulate_steps == 0 or done == iters_per_epoch
                occ, rel, mode = batch_inputs(batch, cfg, device)
                sync = contextlib.nullcontext() if last_micro or world == 1 else step_module.no_sync()
                with sync:
                    with autocast_context(cfg, device):
                        total, terms = step_module(occ, rel, mode)
                    loss = total / cfg.accumulate_steps
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                if not last_micro:
                    continue
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
                global_iter += 1
                values = {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()},
                          "lr": optimizer.param_groups[0]["lr"], "grad_norm": float(grad_norm)}
                summary["last"] = values
                bar.set_postfix(loss=f"{values['loss']:.4f}")
                if global_iter % cfg.log_config.interval == 0 or global_iter == 1:
                    log.scalars("train", {"epoch": epoch + 1, **values}, global_iter)
                    log.info(f"epoch {epoch + 1} iter {i + 1}/{iters_per_epoch} (global {global_iter}) " +
                             " ".join(f"{k} {v:.5g}" for k, v in values.items()))
                if _agree(stop.signal is not None, world, device):
                    bar.close()
                    save(epoch, done, epoch_file=False)
                    summary["stopped_by"] = stop.signal or "peer"
                    log.info(f"stopped by signal {summary['stopped_by']} at epoch {epoch + 1}, batch {done}; "
                             f"resume with --resume-from {work_dir / LATEST}")
                    log.close()
                    return summary
            bar.close()
            skip = 0

            # ---- validation and checkpoints
            e = epoch + 1
            if val_set is not None and cfg.evaluation.interval > 0 and e % cfg.evaluation.interval == 0:
                if rank == 0:
                    res, bev = validate(model, val_set, cfg, device)
                    log.scalars("val", res, global_iter)
                    if bev is not None:
                        log.image("val/bev_target_vs_prediction", bev, global_iter)
                    log.info(f"val epoch {e}: " + " ".join(f"{k} {v:.4g}" for k, v in res.items()))
                    if res and res["miou"] > best:
                        best = res["miou"]
                        atomic_save(training_state(model, optimizer, scheduler, scaler, e, global_iter, 0, best,
                                                   config_dict, model_args, meta), work_dir / BEST)
                        log.info(f"new best val mIoU {best:.3f}: {work_dir / BEST}")
                    summary["val"] = res
                if world > 1:
                    dist.barrier()
            save(e, 0, epoch_file=e % cfg.checkpoint_config.interval == 0 or e == cfg.max_epochs)
    summary["best_val_miou"] = best
    summary["model"] = model
    log.info("training finished")
    log.close()
    if world > 1:
        dist.barrier()
    return summary
