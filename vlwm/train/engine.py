"""The training loop: plain functions, read top to bottom.

``train(cfg, work_dir)`` → set up (distributed, seeds, run record) → build the model and load
weights → data → optimizer, schedule, scaler → :func:`resume` → per epoch :func:`run_epoch`
(forward, loss, backward with accumulation, :func:`optimizer_step`, log) →
:func:`validate_and_checkpoint` → a :class:`TrainSummary`.  SIGTERM / SIGINT stop at the next
optimizer step, save ``latest.pth`` and return.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from vlwm.data.dataset import collate_fn
from vlwm.data.mixing import ConcatDataset, build_dataset
from vlwm.io.dir_lock import DirLock
from vlwm.models import VAEConfig, WorldModelConfig, build_vqvae, build_world_model
from vlwm.train.checkpoint import (BEST, LATEST, atomic_save, load_training_state, load_weights,
                                   save_training_checkpoint, training_state)
from vlwm.train.config import TrainConfig
from vlwm.train.logger import RunLogger
from vlwm.train.optim import build_optimizer, optimizer_step
from vlwm.train.step import TrainStep, apply_trainable, autocast_context, batch_inputs, trainable_parts
from vlwm.train.validation import validate

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


def build_datasets(cfg: TrainConfig, log: RunLogger):
    """``(train_set, val_set)``; ``val_set`` is None when validation is off, the split cannot be
    built (logged) or it is empty.  An empty training set is an error."""
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
    return train_set, val_set


# ---------------------------------------------------------------------------------------------
# The run: what stays fixed, what advances, what is returned
# ---------------------------------------------------------------------------------------------


class StopReason(enum.Enum):
    """Why :func:`train` returned."""

    FINISHED = "finished"
    """All ``max_epochs`` ran."""
    SIGTERM = "SIGTERM"
    """A scheduler's stop: saved, resumable; exit status 0."""
    SIGINT = "SIGINT"
    """Ctrl-C: saved, resumable; exit status 130."""
    PEER = "peer"
    """Another rank received SIGTERM / SIGINT (distributed runs stop together); exit status 130."""


@dataclass
class TrainSummary:
    """What :func:`train` returns."""

    model: nn.Module
    """The trained model (the bare module, not a DistributedDataParallel wrapper)."""
    stopped_by: StopReason
    """Why training returned."""
    best_val_miou: float
    """Best validation mIoU (%) so far, also over a resumed run's earlier epochs; -inf without validation."""
    last: dict[str, float] = field(default_factory=dict)
    """Scalars of the last optimizer step: ``loss``, the loss terms, ``lr``, ``grad_norm`` (empty if none ran)."""
    val: dict[str, float] = field(default_factory=dict)
    """Scalars of the last validation (rank 0; empty if none ran): ``miou``, ``iou``, per step and horizon."""

    @property
    def exit_code(self) -> int:
        """Process exit status: 0 when finished or stopped by SIGTERM, 130 (as for Ctrl-C) otherwise."""
        return 0 if self.stopped_by in (StopReason.FINISHED, StopReason.SIGTERM) else 130


@dataclass
class Run:
    """The parts of a run that stay fixed while it trains."""

    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    device: torch.device
    rank: int
    world: int
    work_dir: Path
    log: RunLogger
    model_args: VAEConfig | WorldModelConfig
    """The model's typed config (stored in every checkpoint)."""
    iters_per_epoch: int
    """Batches per epoch on this rank."""
    config_dict: dict[str, Any] = field(default_factory=dict)
    """The resolved training config (stored in every checkpoint)."""

    def state(self, progress: "Progress", epochs_done: int, iter_in_epoch: int) -> dict[str, Any]:
        """The checkpoint dict at this point (:func:`vlwm.train.checkpoint.training_state`)."""
        return training_state(self.model, self.optimizer, self.scheduler, self.scaler, epochs_done,
                              progress.global_iter, iter_in_epoch, progress.best, self.config_dict, self.model_args,
                              {"vlwm_stage": self.cfg.stage, "world_size": self.world})


@dataclass
class Progress:
    """The parts of a run that advance (and are restored on resume)."""

    epoch: int = 0
    """Epochs completed."""
    global_iter: int = 0
    """Optimizer steps taken."""
    skip: int = 0
    """Batches of epoch ``epoch`` already done (a mid-epoch stop); skipped when it resumes."""
    best: float = float("-inf")
    """Best validation mIoU (%)."""
    last: dict[str, float] = field(default_factory=dict)
    """Scalars of the last optimizer step."""
    val: dict[str, float] = field(default_factory=dict)
    """Scalars of the last validation."""


def save_checkpoint(run: Run, progress: Progress, epochs_done: int, iter_in_epoch: int, epoch_file: bool) -> None:
    """``latest.pth`` (and ``epoch_N.pth`` when ``epoch_file``), on rank 0."""
    if run.rank != 0:
        return
    path = save_training_checkpoint(run.work_dir, run.state(progress, epochs_done, iter_in_epoch), epoch_file,
                                    run.cfg.checkpoint_config.max_keep_ckpts)
    run.log.info(f"saved {path}")


def resume(run: Run, path: str | None) -> Progress:
    """The progress to start from: that of checkpoint ``path`` (model, optimizer, schedule, scaler and
    RNG states restored), or a fresh start when ``path`` is None."""
    if path is None:
        return Progress()
    state = load_training_state(path, run.model, run.optimizer, run.scheduler, run.scaler)
    progress = Progress(epoch=state["epoch"], global_iter=state["global_iter"], skip=state["iter_in_epoch"],
                        best=state["best_val_miou"])
    run.log.info(f"resumed from {path}: epoch {progress.epoch}, iteration {progress.global_iter}, +{progress.skip} "
                 "batches")
    if progress.epoch >= run.cfg.max_epochs:
        run.log.info(f"WARNING: {path} has already completed {progress.epoch} epochs >= max_epochs = "
                     f"{run.cfg.max_epochs}: nothing to train.  To fine-tune from these weights use load_from / "
                     "--load-from.")
    return progress


def step_module_for(run: Run, parts: tuple[str, ...], epoch: int) -> nn.Module:
    """Freeze all but ``parts`` and wrap the model's forward + loss (DDP across ranks); DDP's buckets
    follow ``requires_grad``, so this is redone whenever the trainable parts change."""
    cfg = run.cfg
    apply_trainable(run.model, parts, cfg.stage)
    step: nn.Module = TrainStep(run.model, cfg)
    if run.world > 1:
        step = DistributedDataParallel(step, device_ids=[run.device.index] if run.device.type == "cuda" else None,
                                       find_unused_parameters=cfg.stage != "vqvae")
    n_train = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    run.log.info(f"epoch {epoch + 1}: trainable {list(parts)} ({n_train:,} parameters)")
    return step


def run_epoch(run: Run, progress: Progress, step_module: nn.Module, train_set, epoch: int,
              stop: "StopFlag") -> StopReason | None:
    """Train (0-based) ``epoch`` from batch ``progress.skip`` on: forward, backward (accumulating
    ``accumulate_steps`` batches), :func:`optimizer_step`, log.  On a signal (agreed across ranks)
    save ``latest.pth`` mid-epoch and return why; None when the epoch is complete."""
    cfg, device = run.cfg, run.device
    indices = epoch_indices(train_set, epoch, cfg.seed, run.rank, run.world)[progress.skip * cfg.batch_size:]
    loader = make_loader(train_set, indices, cfg)
    run.model.train()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.max_epochs}", disable=run.rank != 0, initial=progress.skip,
               total=run.iters_per_epoch, leave=False, file=sys.stderr)
    done = progress.skip
    for batch in bar:
        i = done
        done += 1
        last_micro = done % cfg.accumulate_steps == 0 or done == run.iters_per_epoch
        occ, rel, mode = batch_inputs(batch, cfg, device)
        sync = contextlib.nullcontext() if last_micro or run.world == 1 else step_module.no_sync()
        with sync:
            with autocast_context(cfg, device):
                total, terms = step_module(occ, rel, mode)
            loss = total / cfg.accumulate_steps
            (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
        if not last_micro:
            continue
        grad_norm = optimizer_step(run.model, cfg, run.optimizer, run.scheduler, run.scaler)
        progress.global_iter += 1
        values = {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()},
                  "lr": run.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm}
        progress.last = values
        bar.set_postfix(loss=f"{values['loss']:.4f}")
        if progress.global_iter % cfg.log_config.interval == 0 or progress.global_iter == 1:
            run.log.scalars("train", {"epoch": epoch + 1, **values}, progress.global_iter)
            run.log.info(f"epoch {epoch + 1} iter {i + 1}/{run.iters_per_epoch} (global {progress.global_iter}) " +
                         " ".join(f"{k} {v:.5g}" for k, v in values.items()))
        if _agree(stop.signal is not None, run.world, device):
            bar.close()
            save_checkpoint(run, progress, epoch, done, epoch_file=False)
            reason = stop.reason()
            what = f"signal {stop.signal}" if stop.signal is not None else "a signal to another rank"
            run.log.info(f"stopped by {what} at epoch {epoch + 1}, batch {done}; resume with --resume-from "
                         f"{run.work_dir / LATEST}")
            return reason
    bar.close()
    progress.skip = 0
    return None


def validate_and_checkpoint(run: Run, progress: Progress, val_set, epochs_done: int) -> None:
    """After an epoch: validate every ``evaluation.interval`` epochs (rank 0; ``best.pth`` on a new
    best mIoU), then save ``latest.pth`` (and ``epoch_N.pth`` every ``checkpoint_config.interval``)."""
    cfg, e = run.cfg, epochs_done
    if val_set is not None and cfg.evaluation.interval > 0 and e % cfg.evaluation.interval == 0:
        if run.rank == 0:
            res, bev = validate(run.model, val_set, cfg, run.device)
            run.log.scalars("val", res, progress.global_iter)
            if bev is not None:
                run.log.image("val/bev_target_vs_prediction", bev, progress.global_iter)
            run.log.info(f"val epoch {e}: " + " ".join(f"{k} {v:.4g}" for k, v in res.items()))
            if res and res["miou"] > progress.best:
                progress.best = res["miou"]
                atomic_save(run.state(progress, e, 0), run.work_dir / BEST)
                run.log.info(f"new best val mIoU {progress.best:.3f}: {run.work_dir / BEST}")
            progress.val = res
        if run.world > 1:
            dist.barrier()
    save_checkpoint(run, progress, e, 0, epoch_file=e % cfg.checkpoint_config.interval == 0 or e == cfg.max_epochs)


# ---------------------------------------------------------------------------------------------
# Signals and the run record
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

    def reason(self) -> StopReason:
        """The stop reason of this process: its own signal, else a peer's."""
        if self.signal is None:
            return StopReason.PEER
        return StopReason.SIGTERM if self.signal == signal.SIGTERM else StopReason.SIGINT


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


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, work_dir: str | Path, argv: list[str] | None = None,
          raw_config: Any = None) -> TrainSummary:
    """Train as ``cfg`` says, writing checkpoints and logs into ``work_dir``; see :class:`TrainSummary`.

    Rank 0 holds ``work_dir``'s lock (:class:`vlwm.io.dir_lock.DirLock`) for the whole run, so a
    second training into the same folder is refused (:class:`~vlwm.io.dir_lock.FolderBusyError`)
    before it writes anything.
    """
    rank, world, device = setup_distributed(cfg.device)
    work_dir = Path(work_dir)
    if rank != 0:
        return _train(cfg, work_dir, argv, raw_config, rank, world, device)
    with DirLock(work_dir, "work dir"):
        return _train(cfg, work_dir, argv, raw_config, rank, world, device)


def _train(cfg: TrainConfig, work_dir: Path, argv: list[str] | None, raw_config: Any,
           rank: int, world: int, device: torch.device) -> TrainSummary:
    if rank == 0:
        write_run_record(work_dir, cfg, raw_config, argv or sys.argv)
    log = RunLogger(work_dir, cfg.log_config, rank == 0, cfg.to_dict())
    seed_everything(cfg.seed)
    log.info(f"stage {cfg.stage}, grid {cfg.grid.shape}, device {device}, world size {world}")

    model_args = cfg.model_config()
    model = (build_vqvae if cfg.stage == "vqvae" else build_world_model)(model_args).to(device)
    resume_from = cfg.resume_from
    if resume_from is None and (work_dir / LATEST).exists():
        resume_from = str(work_dir / LATEST)                   # official: auto-resume from the work dir
    if resume_from is None and cfg.load_from:
        log.info(f"load_from:\n{load_weights(model, cfg.load_from)}")
    elif resume_from is None and cfg.stage == "world_model" and cfg.model.vqvae_ckpt:
        log.info(f"vqvae_ckpt:\n{load_weights(model, cfg.model.vqvae_ckpt, into_vae=True)}")

    train_set, val_set = build_datasets(cfg, log)
    iters_per_epoch = math.ceil(len(epoch_indices(train_set, 0, cfg.seed, rank, world)) / cfg.batch_size)
    optimizer, scheduler = build_optimizer(model, cfg, math.ceil(iters_per_epoch / cfg.accumulate_steps))
    scaler = torch.amp.GradScaler(device.type) if cfg.fp16 is not None else None
    run = Run(cfg, model, optimizer, scheduler, scaler, device, rank, world, work_dir, log, model_args,
              iters_per_epoch, cfg.to_dict())
    progress = resume(run, resume_from)

    parts, step_module = None, None
    with StopFlag() as stop:
        for epoch in range(progress.epoch, cfg.max_epochs):
            new_parts = trainable_parts(cfg, epoch)
            if new_parts != parts:
                parts, step_module = new_parts, step_module_for(run, new_parts, epoch)
            stopped_by = run_epoch(run, progress, step_module, train_set, epoch, stop)
            if stopped_by is not None:
                log.close()
                return TrainSummary(model, stopped_by, progress.best, progress.last, progress.val)
            validate_and_checkpoint(run, progress, val_set, epoch + 1)
    log.info("training finished")
    log.close()
    if world > 1:
        dist.barrier()
    return TrainSummary(model, StopReason.FINISHED, progress.best, progress.last, progress.val)
