"""``python visualize_demo.py``: forecast videos of chosen windows from a trained world model.

For each window: the autoregressive rollout (:func:`vlwm.eval.run.rollout_batch`), the true and
predicted ego trajectories (grid frame of the last history frame) and, when the dataset provides
images (by default whenever the recordings have them), the front camera → :func:`vlwm.viz.forecast.write_window_video` (MP4 + GIF + PNG frames)
as ``<output-dir>/window_<index>.mp4``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vlwm.data.dataset import collate_fn
from vlwm.eval.run import eval_dataset, load_world_model, predicted_poses, rollout_batch, true_frames
from vlwm.models import CheckpointMismatchError
from vlwm.train.config import ConfigError, TrainConfig, load_config, parse_cfg_options
from vlwm.viz.forecast import write_window_video
from vlwm.viz.video import VideoFiles

log = logging.getLogger(__name__)

FRONT_CAMERA = "CAM_FRONT"
"""The camera shown in the videos when the dataset loads images."""


def _front_images(sample: dict) -> list[np.ndarray | None] | None:
    """Th + Tf front images (H, W, 3) uint8 of one sample, or None without images / front camera."""
    names = list(sample.get("camera_names") or [])
    if "images" not in sample or FRONT_CAMERA not in names:
        return None
    return list(np.asarray(sample["images"])[:, names.index(FRONT_CAMERA)])


def visualize(cfg: TrainConfig, checkpoint: str | Path, output_dir: str | Path, indices: Sequence[int] | None = None,
              split: str = "val", images: bool | None = None, gif: bool = True, pngs: bool = True) -> list[VideoFiles]:
    """Write one video per window ``indices`` of ``split`` (default: the first window).

    ``images`` None shows the front camera when the recordings have camera images, True requires
    them, False leaves them out.
    """
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_world_model(cfg, checkpoint, device)
    if images is None:                  # the camera only where every window has its images
        dataset = eval_dataset(cfg, split, images=False)
        try:
            with_images = eval_dataset(cfg, split, images=True)
        except (FileNotFoundError, ValueError, ConfigError) as err:
            log.info("videos without camera images: %s", err)
        else:
            if len(with_images) == len(dataset):
                dataset = with_images
            else:
                log.info("videos without camera images: %d of %d windows lack them",
                         len(dataset) - len(with_images), len(dataset))
    else:
        dataset = eval_dataset(cfg, split, images=images)
    indices = list(indices) if indices else [0]
    bad = [i for i in indices if not 0 <= i < len(dataset)]
    if bad:
        raise ValueError(f"--scene-idx {bad} outside the {split} split's {len(dataset)} windows")
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in indices:
        sample = dataset[i]
        batch = collate_fn([sample])
        pred, motion = rollout_batch(model, batch, cfg, device)
        traj_pred = predicted_poses(batch, 0, motion[0])[:, :2]                   # (T_f, 2) metres
        traj_true = true_frames(batch, 0)[:, :2]
        rate = float(sample["frame_rate_hz"])
        written.append(write_window_video(
            out_dir / f"window_{i:05d}.mp4", np.asarray(sample["history_occupancy"]),
            np.asarray(sample["future_occupancy"]), pred[0].numpy().astype(np.uint8), traj_true, traj_pred,
            _front_images(sample), cfg.grid, fps=rate, gif=gif, pngs=pngs))
    return written


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", "--py-config", dest="config", required=True, help="python config file")
    p.add_argument("--work-dir", help="the run's folder (default checkpoint: its latest.pth)")
    p.add_argument("--checkpoint", help="world-model checkpoint (default: <work-dir>/latest.pth)")
    p.add_argument("--output-dir", default="visualizations", help="where the videos go")
    p.add_argument("--scene-idx", type=int, nargs="+", help="window indices of the split (default: 0)")
    p.add_argument("--split", choices=("train", "val", "test"), default="val")
    p.add_argument("--images", action=argparse.BooleanOptionalAction, default=None,
                   help="show the front camera (default: when the recordings have camera images)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config keys")
    p.add_argument("--device", help="cpu, cuda … (default: the config's, else CUDA when available)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = configure_parser(argparse.ArgumentParser(prog="visualize_demo.py", description=__doc__)).parse_args(argv)
    options = parse_cfg_options(args.cfg_options)
    if args.device is not None:
        options["device"] = args.device
    if args.checkpoint is None and args.work_dir is None:
        print("error: give --checkpoint or --work-dir (its latest.pth is used)", file=sys.stderr)
        return 2
    checkpoint = args.checkpoint or str(Path(args.work_dir) / "latest.pth")
    try:
        cfg, _ = load_config(args.config, options)
        files = visualize(cfg, checkpoint, args.output_dir, args.scene_idx, args.split, args.images)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, CheckpointMismatchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for f in files:
        print(f"wrote {f.mp4} ({f.frames} frames, {f.size[0]}x{f.size[1]})")
    return 0
