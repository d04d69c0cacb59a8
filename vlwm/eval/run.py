"""Evaluation run: a trained world model and the baselines on one split (``eval_metric_stp3.py``).

``evaluate(cfg, checkpoint, work_dir)`` → load the world model (``weights_only=True``) → the split's
dataset → per window: the autoregressive rollout of the future from the history (official
``forward_autoreg_with_pose``, SPEC §7.1), ``copy_last`` and ``ego_warp`` (true and predicted ego
motion) → :class:`OccForecastMetric` and :class:`VPQMetric` for each (occupancy optionally masked; both
grouped by ``agent_type``) and a :class:`PlanningMetric` of the model's trajectory → ``metrics.json`` +
``metrics.md`` in ``work_dir``.

VPQ's true instances are the simulator's (the occupancy files' ``instances``, loaded with
``load_instances``) for every window whose future frames all have them; other windows (older
ground truth, other dataset types) cut the true occupancy into tracked connected components, the
same way as every forecast — once per window, shared by the model and the baselines.
``metrics.json["vpq_ground_truth"]`` says how many windows took which.  Instances are linked over
time with ego-motion compensation by the true future grid frames (the frames all forecasts and
targets are expressed in).

Trajectory frame (``docs/evaluation.md``): positions of the future frames ``T_h .. T_h + T_f - 1`` in the
grid frame of the last history frame ``T_h - 1``.  The rollout takes the true motion ``T_h - 1 → T_h``
as an input (the last history pose token) and predicts the motions after it, so the predicted
trajectory composes that input with the rollout's first ``T_f - 1`` predicted motions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from vlwm.data.dataset import collate_fn
from vlwm.data.mixing import build_dataset
from vlwm.eval.baselines import copy_last, ego_warp
from vlwm.eval.collision import collision_config, occupancy_collisions
from vlwm.eval.occupancy import OccForecastMetric
from vlwm.eval.trajectory import PlanningMetric, grid_motion_from_poses, poses_from_rel_motion
from vlwm.eval.vpq import TrackerConfig, VPQMetric, track_instances
from vlwm.models import build_world_model
from vlwm.train.checkpoint import load_weights
from vlwm.train.config import ConfigError, TrainConfig

MASKS = ("none", "lidar", "camera")
"""``--mask`` choices: evaluate every voxel, or only those seen by the lidar / the cameras."""

BASELINES = ("copy_last", "ego_warp_true", "ego_warp_pred")
"""Baseline entries of ``metrics.json``: ego_warp with the true future motion and with the model's."""

VPQ_GT_SIMULATOR = "simulator_instances"
"""``vpq_ground_truth`` source: the simulator's instance ids stored with the ground truth."""
VPQ_GT_COMPONENTS = "connected_components"
"""``vpq_ground_truth`` source: the documented fallback, tracked connected components of the true occupancy."""


# ---------------------------------------------------------------------------------------------
# Model and data
# ---------------------------------------------------------------------------------------------


def load_world_model(cfg: TrainConfig, checkpoint: str | Path, device: torch.device) -> tuple[nn.Module, str]:
    """The config's world model with ``checkpoint``'s weights (strict, safe loading), in eval mode."""
    if cfg.stage != "world_model":
        raise ConfigError(f"evaluation needs a world-model config (model.type='OccWorld'), got stage {cfg.stage}")
    model = build_world_model(cfg.model_config())
    report = load_weights(model, checkpoint)
    return model.to(device).eval(), str(report)


def eval_dataset(cfg: TrainConfig, split: str, mask: str = "none", images: bool = False, instances: bool = False):
    """The split's dataset (config's ``data.<split>``), with visibility masks / images turned on when asked.

    ``instances`` turns on ``load_instances`` for a ``GazeboOccWorldDataset`` (other types have none:
    VPQ then falls back to connected components).
    """
    d = cfg.dataset_dict(split)
    extra = {}
    if mask != "none":
        extra["load_masks"] = True
    if images:
        extra["load_images"] = True
    if instances and d.get("type") == "GazeboOccWorldDataset":
        d["config"] = {**d["config"], "load_instances": True}
    if extra:
        if d.get("type") != "GazeboOccWorldDataset":
            raise ConfigError(f"--mask {mask} / images need a GazeboOccWorldDataset for data.{split}, got {d.get('type')}")
        d["config"] = {**d["config"], **extra}
    return build_dataset(d)


def window_poses(batch: dict, cfg: TrainConfig) -> tuple[Tensor, Tensor]:
    """Pose inputs of the whole window: ``(B, F, motion_dims)`` float and ``(B, F, num_modes)`` commands."""
    m = cfg.model
    rel = batch["rel_motion"] if m.motion_dims == 4 else batch["rel_poses"]
    if rel.shape[-1] != m.motion_dims:
        raise ValueError(f"model.motion_dims = {m.motion_dims} but the data give {rel.shape[-1]} components")
    return torch.as_tensor(rel).float(), torch.as_tensor(batch["gt_mode"]).float()


@torch.no_grad()
def rollout_batch(model: nn.Module, batch: dict, cfg: TrainConfig, device: torch.device) -> tuple[Tensor, np.ndarray]:
    """Forecast the future of a collated batch from its history.

    Returns
    -------
    pred : (B, T_f, X, Y, Z) int64 class ids, each future frame in its own grid frame (on CPU).
    motion : (B, T_f, motion_dims) float64, the predicted (commanded-mode) motion of frames
        ``T_h .. T_h + T_f - 1`` to their next frame (``rel_motion`` convention).
    """
    hist, fut = batch["history_occupancy"], batch["future_occupancy"]
    t_h, t_f = hist.shape[1], fut.shape[1]
    occ = torch.cat([hist, fut], dim=1).long().to(device)                         # (B, F, X, Y, Z)
    rel, mode = (x.to(device) for x in window_poses(batch, cfg))
    end = t_h + t_f
    start = max(0, end - 1 - cfg.model.transformer.num_frames)    # the window the transformer holds
    if start >= t_h:
        raise ValueError(f"the model's num_frames={cfg.model.transformer.num_frames} cannot hold a history of "
                         f"{t_h} and a future of {t_f} frames")
    out = model.rollout(occ, rel, mode, start=start, mid=t_h, end=end)
    return out.sem_pred.cpu(), out.poses.double().cpu().numpy()


def _motion4(motion: np.ndarray) -> np.ndarray:
    """(..., T, 2|4) motions -> (..., T, 4) (dx, dy, dz, dyaw), zeros for missing components."""
    if motion.shape[-1] == 4:
        return motion
    out = np.zeros((*motion.shape[:-1], 4))
    out[..., :2] = motion
    return out


def predicted_poses(batch: dict, b: int, pred_motion: np.ndarray) -> np.ndarray:
    """(T_f, 4) predicted (x, y, z, yaw) of the future frames in the last history grid frame (vehicle z)."""
    t_h = batch["history_occupancy"].shape[1]
    given = _motion4(np.asarray(batch["rel_motion"][b, t_h - 1:t_h], np.float64))      # input motion T_h-1 -> T_h
    steps = np.concatenate([given, _motion4(pred_motion[:-1])])                     # (T_f, 4)
    poses = poses_from_rel_motion(steps)
    poses[:, 2] += float(batch["ego_height"][b, t_h - 1])
    return poses


def true_frames(batch: dict, b: int) -> np.ndarray:
    """(T_f, 4) true grid motions of the future frames in the last history grid frame."""
    t_h = batch["history_occupancy"].shape[1]
    poses = np.concatenate([np.asarray(batch["history_poses"][b]), np.asarray(batch["future_poses"][b])])
    return grid_motion_from_poses(poses, np.asarray(batch["ego_height"][b]), t_h - 1)[t_h:]


def true_instances(batch: dict, b: int, frames: np.ndarray, metric: VPQMetric) -> tuple[np.ndarray, str]:
    """(T_f, X, Y, Z) int32 true instance ids of window ``b``'s future, and where they came from.

    The simulator's (``future_instances``) when every future frame has them (``instances_valid``),
    else :func:`vlwm.eval.vpq.track_instances` of the true occupancy, linked in the true future grid
    frames ``frames`` ((T_f, 4), last history grid frame).
    """
    t_h = batch["history_occupancy"].shape[1]
    if "future_instances" in batch and bool(np.asarray(batch["instances_valid"][b, t_h:]).all()):
        return np.asarray(batch["future_instances"][b]), VPQ_GT_SIMULATOR
    target = np.asarray(batch["future_occupancy"][b])
    return track_instances(target, metric.spec, metric.classes, frames, metric.tracker), VPQ_GT_COMPONENTS


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def evaluate(cfg: TrainConfig, checkpoint: str | Path, work_dir: str | Path, split: str = "val", mask: str = "none",
             max_windows: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``split``; writes and returns the metrics (see module docstring)."""
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, report = load_world_model(cfg, checkpoint, device)
    dataset = eval_dataset(cfg, split, mask, instances=True)
    n = len(dataset) if max_windows is None else min(len(dataset), max_windows)
    if n == 0:
        raise ValueError(f"the {split} split is empty ({cfg.dataset_dict(split)})")
    loader = DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=cfg.batch_size, shuffle=False,
                        num_workers=cfg.num_workers, collate_fn=collate_fn)
    grid = cfg.grid
    metrics: dict[str, OccForecastMetric] = {}
    vpq: dict[str, VPQMetric] = {}
    vpq_sources = {VPQ_GT_SIMULATOR: 0, VPQ_GT_COMPONENTS: 0}
    plan: PlanningMetric | None = None
    for batch in tqdm(loader, desc=f"eval {split}", disable=not progress, unit="batch"):
        target = batch["future_occupancy"].long()                                  # (B, T_f, X, Y, Z)
        b_size, t_f = target.shape[:2]
        rate = float(np.asarray(batch["frame_rate_hz"]).reshape(-1)[0])
        if not metrics:
            metrics = {k: OccForecastMetric(t_f, frame_rate_hz=rate) for k in ("model", *BASELINES)}
            vpq = {k: VPQMetric(t_f, grid, tracker=TrackerConfig()) for k in ("model", *BASELINES)}
            plan = PlanningMetric(t_f, frame_rate_hz=rate)
        sel_mask = None if mask == "none" else batch[f"future_mask_{mask}"]
        groups = list(batch["agent_type"])
        pred, motion = rollout_batch(model, batch, cfg, device)
        last = batch["history_occupancy"][:, -1].long()                            # (B, X, Y, Z)
        frames = np.stack([true_frames(batch, b) for b in range(b_size)])         # (B, T_f, 4)
        pred_poses = np.stack([predicted_poses(batch, b, motion[b]) for b in range(b_size)])
        warp_pred = pred_poses.copy()
        warp_pred[..., 2] = 0.0                                                    # grid follows the ground
        forecasts = {"model": pred, "copy_last": copy_last(batch["history_occupancy"].long(), t_f),
                     "ego_warp_true": ego_warp(last, frames, grid), "ego_warp_pred": ego_warp(last, warp_pred, grid)}
        for k, f in forecasts.items():
            metrics[k].update(f, target, mask=sel_mask, group=groups)
        for b in range(b_size):                                                    # VPQ: one window at a time
            gt_inst, source = true_instances(batch, b, frames[b], vpq["model"])
            vpq_sources[source] += 1
            for k, f in forecasts.items():
                vpq[k].update(f[b:b + 1], target[b:b + 1], gt_instance=gt_inst[None], frames=frames[b:b + 1],
                              group=groups[b])
        t_h = batch["history_occupancy"].shape[1]
        for b in range(b_size):
            gt = frames[b, :, :3] + np.array([0, 0, 1.0]) * np.asarray(batch["ego_height"][b, t_h:, None], np.float64)
            coll = occupancy_collisions(pred_poses[b], gt, frames[b], target[b].numpy(), grid,
                                        collision_config(groups[b]))
            valid = np.asarray(batch["rel_poses_valid"][b, t_h - 1:t_h - 1 + t_f], bool).copy()
            valid[0] = False        # the motion to the first future frame is a model input: no prediction there
            plan.update(pred_poses[b][None, :, :3], gt[None], valid=valid[None], collision=coll.counted[None],
                        group=groups[b])
    results = {"split": split, "mask": mask, "checkpoint": str(checkpoint), "num_windows": n,
               "load_report": report,
               "vpq_ground_truth": vpq_ground_truth(vpq_sources),
               "model": {"occupancy": metrics["model"].compute().to_dict(), "vpq": vpq["model"].compute().to_dict(),
                         "planning": plan.compute().to_dict()},
               "baselines": {k: {"occupancy": metrics[k].compute().to_dict(), "vpq": vpq[k].compute().to_dict()}
                             for k in BASELINES}}
    write_metrics(work_dir, results)
    return results


def vpq_ground_truth(sources: dict[str, int]) -> dict[str, Any]:
    """``metrics.json["vpq_ground_truth"]``: which true instances VPQ used, and in how many windows.

    ``instances`` is :data:`VPQ_GT_SIMULATOR`, :data:`VPQ_GT_COMPONENTS` or ``"mixed"``.
    """
    used = [k for k, n in sources.items() if n]
    return {"instances": used[0] if len(used) == 1 else "mixed", "windows": dict(sources),
            "tracker": asdict(TrackerConfig()), "ego_motion_compensated": True}


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"


def _pct(v) -> str:
    """A fraction as a percentage with two decimals; NaN / None as "–"."""
    return _fmt(None if v is None else 100.0 * float(v))


def markdown_table(results: dict) -> str:
    """Model vs baselines: mIoU / IoU at 1 s, 2 s, 3 s and their mean, VPQ; L2 and collision (model only)."""
    rows = [("model", results["model"])] + list(results["baselines"].items())
    horizons = list(results["model"]["occupancy"]["horizons"])
    head = (["method"] + [f"mIoU {h}" for h in horizons] + ["mIoU avg"] + [f"IoU {h}" for h in horizons]
            + ["IoU avg", "VPQ (%)", "L2 avg (m)", "collision avg (%)"])
    lines = [f"Split `{results['split']}`, mask `{results['mask']}`, {results['num_windows']} windows, "
             f"checkpoint `{results['checkpoint']}`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows:
        o, p, v = r["occupancy"], r.get("planning"), r.get("vpq")
        cells = ([name] + [_fmt(o["miou_at"].get(h)) for h in horizons] + [_fmt(o["miou_avg"])]
                 + [_fmt(o["iou_at"].get(h)) for h in horizons] + [_fmt(o["iou_avg"])]
                 + [_pct(v["vpq"]) if v else "–"]
                 + [_fmt(p["l2_avg_mean"]) if p else "–", _fmt(p["collision_avg_mean"]) if p else "–"])
        lines.append("| " + " | ".join(cells) + " |")
    gt = results.get("vpq_ground_truth")                  # absent in results written before VPQ was reported
    if gt:
        counts = ", ".join(f"{k}: {n}" for k, n in gt["windows"].items())
        lines += ["", f"VPQ (dynamic classes, FIERY's definition): true instances from "
                      f"{_VPQ_SOURCE_WORDS[gt['instances']]} (windows {counts}); – = no dynamic instance at all."]
    return "\n".join(lines) + "\n"


_VPQ_SOURCE_WORDS = {VPQ_GT_SIMULATOR: "the simulator's instance ids",
                     VPQ_GT_COMPONENTS: "connected components of the true occupancy (fallback)",
                     "mixed": "the simulator where stored, else connected components"}


def write_metrics(work_dir: str | Path, results: dict) -> tuple[Path, Path]:
    """``metrics.json`` (NaN written as null) and ``metrics.md`` in ``work_dir``."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    js, md = work_dir / "metrics.json", work_dir / "metrics.md"
    js.write_text(json.dumps(_json_safe(results), indent=2))
    md.write_text(markdown_table(results))
    return js, md


def summary_line(results: dict) -> str:
    """One terminal line: model and copy_last mIoU / IoU avg and VPQ (%), model L2."""
    m, c = results["model"], results["baselines"]["copy_last"]
    o, co, p = m["occupancy"], c["occupancy"], m["planning"]
    return (f"eval {results['split']} ({results['num_windows']} windows, mask {results['mask']}): model mIoU "
            f"{_fmt(o['miou_avg'])} IoU {_fmt(o['iou_avg'])} VPQ {_pct(m['vpq']['vpq'])} L2 {_fmt(p['l2_avg_mean'])} m"
            f" | copy_last mIoU {_fmt(co['miou_avg'])} IoU {_fmt(co['iou_avg'])} VPQ {_pct(c['vpq']['vpq'])}")
