"""Training checkpoints: atomic writes, rotation, exact resume, and weights-only starts.

A checkpoint is the official train.py dict (SPEC §6: ``state_dict`` without ``module.``,
``optimizer``, ``scheduler``, ``epoch`` = completed epochs, ``global_iter``) plus what an exact
resume needs: ``iter_in_epoch`` (batches of the next epoch already done, after a SIGTERM),
``scaler``, ``rng`` (torch / numpy / python / CUDA generator states), ``best_val_miou``, and the
run's record: ``config`` (the resolved config dict), ``model_args`` (the model dataclass), ``meta``.
Only tensors and plain containers are stored, so every file loads with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vlwm.io.atomic import atomic_write
from vlwm.models import adapt_depth, extend_pose_inputs, load_state_dict_checked, read_checkpoint
from vlwm.models.checkpoint import CheckpointMismatchError, LoadReport, official_state_dict, sub_state_dict

LATEST = "latest.pth"
BEST = "best.pth"
_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pth$")


def rng_state() -> dict[str, Any]:
    """All generator states as tensors / plain values (safe for ``weights_only`` loading)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                                                        "pos": int(pos), "has_gauss": int(has_gauss),
                                                        "cached": float(cached)},
             "python": _py_state_to_plain(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_plain(state):
    version, internal, gauss = state
    return {"version": version, "internal": list(internal), "gauss": gauss}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda fh: torch.save(obj, fh), durable=True)


def save_training_checkpoint(work_dir: Path, state: dict[str, Any], epoch_file: bool, max_keep: int) -> Path:
    """Write ``latest.pth`` (always) and ``epoch_{epoch}.pth`` (when ``epoch_file``), keeping the
    newest ``max_keep`` epoch files (-1 = all).  Returns the path written last."""
    work_dir = Path(work_dir)
    written = work_dir / LATEST
    if epoch_file:
        written = work_dir / f"epoch_{state['epoch']}.pth"
        atomic_save(state, written)
        tmp = work_dir / f".{LATEST}.link"
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        try:                                   # the official latest.pth is a symlink; a copy where links fail
            os.symlink(written.name, tmp)
            os.replace(tmp, work_dir / LATEST)
        except OSError:
            atomic_save(state, work_dir / LATEST)
        if max_keep > 0:
            epochs = sorted(int(m.group(1)) for f in work_dir.iterdir() if (m := _EPOCH_RE.match(f.name)))
            for e in epochs[:-max_keep]:
                (work_dir / f"epoch_{e}.pth").unlink()
    else:
        if (work_dir / LATEST).is_symlink():
            (work_dir / LATEST).unlink()
        atomic_save(state, written)
    return written


def training_state(model: nn.Module, optimizer, scheduler, scaler, epoch: int, global_iter: int, iter_in_epoch: int,
                   best_val_miou: float, config: dict, model_args: Any, meta: dict) -> dict[str, Any]:
    return {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "epoch": epoch, "global_iter": global_iter,
            "iter_in_epoch": iter_in_epoch, "best_val_miou": best_val_miou, "rng": rng_state(), "config": config,
            "model_args": asdict(model_args), "meta": meta}


def load_training_state(path: str | Path, model: nn.Module, optimizer, scheduler, scaler) -> dict[str, Any]:
    """Resume: the model (strict), optimizer, scheduler, scaler and RNG states from ``path``.

    Returns the checkpoint's counters (``epoch``, ``global_iter``, ``iter_in_epoch``,
    ``best_val_miou``).  An official train.py checkpoint (no RNG, no ``iter_in_epoch``) resumes too.
    """
    ckpt = read_checkpoint(path)
    missing = [k for k in ("state_dict", "optimizer", "scheduler", "epoch") if k not in ckpt]
    if missing:
        raise ValueError(f"{path} cannot be resumed: it lacks {missing} (a weights-only file? use load_from)")
    try:
        load_state_dict_checked(model, official_state_dict(ckpt), strict=True, source=str(path))
    except CheckpointMismatchError as err:
        err.report.notes.append("resuming needs exactly this model; to start from these weights on another grid "
                                "or pose layout use load_from / --load-from (adapts depth and pose heads)")
        raise CheckpointMismatchError(err.report) from None
    optimizer.load_state_dict(ckpt["optimizer"])
    sched = ckpt["scheduler"]
    if isinstance(sched, dict) and "last_epoch" in sched:
        scheduler.load_state_dict(sched)
    else:                                   # an official (timm) scheduler: continue at global_iter
        scheduler.last_epoch = int(ckpt.get("global_iter", 0))
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if ckpt.get("rng"):
        set_rng_state(ckpt["rng"])
    return {"epoch": int(ckpt["epoch"]), "global_iter": int(ckpt.get("global_iter", 0)),
            "iter_in_epoch": int(ckpt.get("iter_in_epoch", 0)),
            "best_val_miou": float(ckpt.get("best_val_miou", float("-inf")))}


def _adapt(sd: dict, model_sd: dict, notes: list[str]) -> dict:
    """Depth / pose adaptation when the shapes call for it."""
    prefix = "vae." if "vae.encoder.conv_in.weight" in sd else ""
    key_in = prefix + "encoder.conv_in.weight"
    if key_in in sd and key_in in model_sd and sd[key_in].shape != model_sd[key_in].shape:
        expansion = model_sd[prefix + "class_embeds.weight"].shape[1]
        depth = model_sd[key_in].shape[1] // expansion
        sd, report = adapt_depth(sd, depth)
        notes.append(f"adapt_depth -> {depth} levels: {report}")
    key_pose = "pose_encoder.pose_encoder.0.weight"
    if key_pose in sd and key_pose in model_sd and sd[key_pose].shape != model_sd[key_pose].shape:
        motion_dims = model_sd[key_pose].shape[1] - (sd[key_pose].shape[1] - 2)
        sd, report = extend_pose_inputs(sd, motion_dims=motion_dims)
        notes.append(f"extend_pose_inputs -> motion_dims {motion_dims}: {report}")
    return sd


def load_weights(model: nn.Module, path: str | Path, into_vae: bool = False) -> LoadReport:
    """``load_from`` / ``vqvae_ckpt``: weights only, strict, with a report (returned and logged by
    the caller); adapted with :func:`adapt_depth` / :func:`extend_pose_inputs` when needed.

    ``into_vae``: load a VQ-VAE checkpoint into ``model.vae`` (stage 2); a world-model checkpoint's
    ``vae.*`` part is taken when given one.
    """
    notes: list[str] = []
    sd = official_state_dict(read_checkpoint(path), notes)
    target = model
    if into_vae:
        target = model.vae
        if any(k.startswith("vae.") for k in sd):
            sd = sub_state_dict(sd, "vae.")
            notes.append("took the 'vae.' part of a world-model checkpoint")
    elif hasattr(model, "vae") and not any(k.startswith("vae.") for k in sd) and "class_embeds.weight" in sd:
        target = model.vae
        notes.append("a VQ-VAE checkpoint: loaded into model.vae")
    sd = _adapt(sd, target.state_dict(), notes)
    return load_state_dict_checked(target, sd, strict=True, source=str(path), notes=notes)
