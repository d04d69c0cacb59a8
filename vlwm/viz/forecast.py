"""One forecast window as frames: history, ground-truth future and predicted future side by side.

Layout of each frame (one per time step, history first)::

    [front camera]  [ground truth, 3D]   [prediction, 3D]
    [trajectories]  [ground truth, BEV]  [prediction, BEV]

During the history both 3D/BEV columns show the observed grid.  Trajectories are waypoints in
grid-frame metres (the grid frame of the last history frame: the ego at the origin, x forward);
the true one is green, the predicted one red.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE
from vlwm.viz.bev import PRED_COLOUR, TRUE_COLOUR, bev_map
from vlwm.viz.video import PANEL_HEIGHT, VideoFiles, compose, write_video
from vlwm.viz.voxel_render import render_voxels, unit_grid

RENDER_SIZE = (480, 360)    #: (width, height) of the 3D panels, pixels
BEV_SCALE = 2               #: BEV pixels per voxel


def _check(name: str, grids: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    grids = np.asarray(grids)
    if grids.ndim != 4:
        raise ValueError(f"{name} must be (T, X, Y, Z) class ids, got shape {grids.shape}")
    if shape is not None and grids.shape[1:] != shape:
        raise ValueError(f"{name} has grids of shape {grids.shape[1:]}, the history {shape}")
    return grids


def render_window(
    history: np.ndarray,
    gt_future: np.ndarray,
    pred_future: np.ndarray,
    traj_true: np.ndarray | None = None,
    traj_pred: np.ndarray | None = None,
    front_images: Sequence[np.ndarray | None] | None = None,
    grid: GridSpec | None = None,
    free: int = FREE,
) -> list[np.ndarray]:
    """Frames of one window.

    Parameters
    ----------
    history : (Th, X, Y, Z) uint8 class ids, grid frame.
    gt_future, pred_future : (Tf, X, Y, Z) uint8 class ids.
    traj_true, traj_pred : (Tf, 2) float future ego positions (x, y), metres, grid frame; optional.
    front_images : Th + Tf front-camera images (H, W, 3) uint8 (None entries allowed), or None.
    grid : the grids' extent (default: 1 m voxels centred on the ego).

    Returns
    -------
    list of Th + Tf (H, W, 3) uint8 frames.
    """
    history = _check("history", history, None)
    shape = history.shape[1:]
    gt_future = _check("gt_future", gt_future, shape)
    pred_future = _check("pred_future", pred_future, shape)
    th, tf = len(history), len(gt_future)
    if len(pred_future) != tf:
        raise ValueError(f"pred_future has {len(pred_future)} steps, gt_future {tf}")
    for name, t in (("traj_true", traj_true), ("traj_pred", traj_pred)):
        if t is not None and np.asarray(t).shape != (tf, 2):
            raise ValueError(f"{name} must be ({tf}, 2) metres (x, y), got shape {np.asarray(t).shape}")
    if front_images is not None and len(front_images) != th + tf:
        raise ValueError(f"front_images has {len(front_images)} entries, expected Th + Tf = {th + tf}")
    grid = grid or unit_grid(shape)

    def render(labels):
        return render_voxels(labels, grid, size=RENDER_SIZE, free=free)

    both = [t for t in (traj_true, traj_pred) if t is not None]
    empty = np.full(shape, free, np.uint8)
    frames = []
    for step in range(th + tf):
        if step < th:
            gt, pred, tag = history[step], history[step], f"history t={step - th + 1}"
            k = 0
        else:
            k = step - th + 1                                            # future steps shown so far
            gt, pred, tag = gt_future[k - 1], pred_future[k - 1], f"future t=+{k}"
        true_xy = None if traj_true is None else np.concatenate([[[0.0, 0.0]], np.asarray(traj_true)[:k]])
        pred_xy = None if traj_pred is None else np.concatenate([[[0.0, 0.0]], np.asarray(traj_pred)[:k]])
        traj_title = "trajectory: true (green) / pred (red)"
        if k and both and len(both) == 2:
            err = float(np.linalg.norm(np.asarray(traj_true)[k - 1] - np.asarray(traj_pred)[k - 1]))
            traj_title += f"  L2 {err:.2f} m"
        trajectories = bev_map(empty, grid, BEV_SCALE, [(true_xy, TRUE_COLOUR), (pred_xy, PRED_COLOUR)])
        front = None if front_images is None else front_images[step]
        rows = [
            [("front camera" if front is not None else "no camera", front),
             (f"ground truth 3D  {tag}", render(gt)), (f"prediction 3D  {tag}", render(pred))],
            [(traj_title, trajectories),
             (f"ground truth BEV  {tag}", bev_map(gt, grid, BEV_SCALE, [(true_xy, TRUE_COLOUR)])),
             (f"prediction BEV  {tag}", bev_map(pred, grid, BEV_SCALE, [(pred_xy, PRED_COLOUR)]))],
        ]
        frames.append(compose(rows, PANEL_HEIGHT))
    return frames


def write_window_video(
    out: str | os.PathLike,
    history: np.ndarray,
    gt_future: np.ndarray,
    pred_future: np.ndarray,
    traj_true: np.ndarray | None = None,
    traj_pred: np.ndarray | None = None,
    front_images: Sequence[np.ndarray | None] | None = None,
    grid: GridSpec | None = None,
    fps: float = 2.0,
    gif: bool = True,
    pngs: bool = True,
) -> VideoFiles:
    """Render one window (:func:`render_window`) to ``out`` (``.mp4``), ``out`` with ``.gif`` and PNG frames
    in the folder ``out`` without its suffix."""
    out = Path(out)
    frames = render_window(history, gt_future, pred_future, traj_true, traj_pred, front_images, grid)
    return write_video(out, frames, fps, gif=gif, png_dir=out.with_suffix("") if pngs else None)
