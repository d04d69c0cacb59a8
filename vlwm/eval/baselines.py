"""Forecasting baselines that any world model must beat, on the same windows as the model.

* :func:`copy_last` — the world stands still *and so does the ego*: every future frame is the last
  observed one (OccWorld's ``without_all`` switch does the same, ``TransVQVAE.py``).
* :func:`ego_warp` — the world stands still, the ego moves: the last observed grid resampled into
  each future grid frame by the ego motion (the true future poses, or a model's predicted ones),
  nearest voxel, free where the future grid sees beyond the last one.  Static scenes are then
  forecast exactly up to the voxel rounding; only moving objects and newly revealed space are
  left for a model to get right.
* :func:`ego_warp_cv` — :func:`ego_warp` by the motion a constant-velocity, constant-yaw-rate
  extrapolation of the *history* poses predicts (:func:`constant_velocity_motion`): a physics
  baseline that needs neither a model nor the future.

Frames: grids are indexed ``[x, y, z]`` in their own grid frame (x forward, y left, z up from the
ground under the vehicle; :mod:`vlwm.gt.ego_frame`).  A **motion** ``(dx, dy, dz, dyaw)`` is the
pose of a future grid frame in the last observed grid frame (metres, radians counter-clockwise
about z).  Get them from recorded poses with
:func:`vlwm.eval.trajectory.grid_motion_from_poses` (or :func:`future_grid_motion` for a dataset
sample), or from per-step motions with :func:`vlwm.eval.trajectory.poses_from_rel_motion`.  The
grid frame's origin is on the ground, so its ``dz`` is the change of ground height, not of the
vehicle's altitude: with a drone's predicted motion, zero the z column unless the ground really
rises or falls.

Both accept numpy arrays or torch tensors (on any device) and return the same kind.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from vlwm.eval.trajectory import grid_motion_from_poses
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE


def copy_last(history, num_future: int):
    """Repeat the last history frame.

    Parameters
    ----------
    history : (..., T_h, X, Y, Z) class ids (numpy or torch).
    num_future : int, future frames ``T_f``.

    Returns
    -------
    (..., T_f, X, Y, Z), same dtype and kind as ``history``.
    """
    last = history[..., -1:, :, :, :]
    if isinstance(history, torch.Tensor):
        return last.repeat(*([1] * (last.dim() - 4)), num_future, 1, 1, 1)
    return np.repeat(np.asarray(last), num_future, axis=-4)


def ego_warp(last, motion, spec: GridSpec, free: int = FREE):
    """Resample the last observed grid into each future grid frame (nearest voxel, free outside).

    Parameters
    ----------
    last : (..., X, Y, Z) class ids (numpy or torch), the last observed frame in its grid frame.
    motion : (..., T, 4) float
        ``(dx, dy, dz, dyaw)`` of each future grid frame in the last grid frame (metres, radians).
    spec : GridSpec
        The grid of all frames.
    free : int
        Label of future voxels whose centre falls outside the last grid.

    Returns
    -------
    (..., T, X, Y, Z), same dtype and kind as ``last``: future voxel ``v`` of step t takes the
    label of the last-frame voxel that contains ``R(dyaw_t) c_v + d_t``, ``c_v`` its centre.
    """
    as_numpy = not isinstance(last, torch.Tensor)
    grid = torch.as_tensor(np.ascontiguousarray(last)) if as_numpy else last
    m = torch.as_tensor(np.ascontiguousarray(motion) if not isinstance(motion, torch.Tensor) else motion,
                        dtype=torch.float64, device=grid.device)
    shape = tuple(spec.shape)
    if tuple(grid.shape[-3:]) != shape:
        raise ValueError(f"ego_warp: grid shape {tuple(grid.shape[-3:])} is not the spec's {shape}")
    if m.shape[-1] != 4 or tuple(m.shape[:-2]) != tuple(grid.shape[:-3]):
        raise ValueError(f"ego_warp: motion must be (..., T, 4) with the grid's leading dims "
                         f"{tuple(grid.shape[:-3])}, got {tuple(m.shape)}")
    lead, steps = tuple(grid.shape[:-3]), m.shape[-2]
    flat = grid.reshape(-1, math.prod(shape))                                   # (N, X*Y*Z)
    m = m.reshape(-1, steps, 4)                                                 # (N, T, 4)
    axes = [torch.tensor(spec.point_cloud_range[a] + (np.arange(n) + 0.5) * spec.voxel_size[a],
                         dtype=torch.float64, device=grid.device) for a, n in enumerate(shape)]
    xs, ys, zs = axes[0][:, None], axes[1][None, :], axes[2]                   # (X, 1), (1, Y), (Z,)
    out = torch.full((flat.shape[0], steps, *shape), free, dtype=grid.dtype, device=grid.device)
    for n in range(flat.shape[0]):
        for t in range(steps):
            dx, dy, dz, yaw = m[n, t]
            c, s = torch.cos(yaw), torch.sin(yaw)
            ix = _index(c * xs - s * ys + dx, spec, 0)                          # (X, Y) source voxel
            iy = _index(s * xs + c * ys + dy, spec, 1)
            iz = _index(zs + dz, spec, 2)                                       # (Z,)
            inside = ((ix >= 0) & (ix < shape[0]) & (iy >= 0) & (iy < shape[1]))[..., None] \
                & ((iz >= 0) & (iz < shape[2]))                                 # (X, Y, Z)
            lin = ((ix * shape[1] + iy) * shape[2])[..., None] + iz             # (X, Y, Z) flat source index
            vals = flat[n][lin.clamp(0, flat.shape[1] - 1)]
            out[n, t] = torch.where(inside, vals, out[n, t])
    out = out.reshape(*lead, steps, *shape)
    return out.numpy() if as_numpy else out


def _index(coord: torch.Tensor, spec: GridSpec, axis: int) -> torch.Tensor:
    """int64 voxel index along ``axis`` of grid-frame coordinates (metres); may fall outside."""
    lo, size = spec.point_cloud_range[axis], spec.voxel_size[axis]
    return torch.floor((coord - lo) / size).long()


def future_grid_motion(sample: Mapping[str, Any]) -> np.ndarray:
    """(T_f, 4) float64 true motions of a dataset sample's future grid frames (for :func:`ego_warp`).

    Uses ``history_poses``, ``future_poses`` and ``ego_height`` of one (uncollated) sample of
    :class:`vlwm.data.GazeboOccWorldDataset`; the reference frame is the last history frame.
    """
    hist, fut = np.asarray(sample["history_poses"]), np.asarray(sample["future_poses"])
    poses = np.concatenate([hist, fut])
    return grid_motion_from_poses(poses, np.asarray(sample["ego_height"]), len(hist) - 1)[len(hist):]


def constant_velocity_motion(history_poses, ego_height, num_future: int) -> np.ndarray:
    """(T_f, 4) float64 future grid motions under constant velocity and constant yaw rate.

    The last history step (grid frame ``T_h - 2`` -> ``T_h - 1``, a planar rigid motion: forward
    and lateral displacement and yaw change, all in the moving frame) is repeated ``num_future``
    times, so the vehicle keeps its speed and turn rate.  The grid frame's origin lies on the
    ground, so ``dz`` is the change of ground height; flat ground is assumed (``dz = 0``).

    Parameters
    ----------
    history_poses : (T_h, 13) float, recorded poses ``[x, y, z, qw, qx, qy, qz, ...]`` (world frame), T_h >= 2.
    ego_height : (T_h,) float, height (m) of the vehicle above the ground under it.
    num_future : int, future steps ``T_f``.

    Returns
    -------
    (T_f, 4) ``(dx, dy, dz, dyaw)`` of each future grid frame in the last history grid frame
    (metres; x forward, y left, z up; radians): the ``motion`` of :func:`ego_warp`.
    """
    hist = np.asarray(history_poses, np.float64)
    if hist.ndim != 2 or len(hist) < 2:
        raise ValueError(f"constant_velocity_motion: needs (T_h >= 2, 13) history poses, got {hist.shape}")
    prev = grid_motion_from_poses(hist, np.asarray(ego_height, np.float64), len(hist) - 1)[-2]   # T_h-2 in T_h-1
    c, s = math.cos(prev[3]), math.sin(prev[3])
    step_t = np.array([-(c * prev[0] + s * prev[1]), -(-s * prev[0] + c * prev[1])])     # inverse: T_h-1 in T_h-2
    step_yaw = -prev[3]
    out = np.zeros((int(num_future), 4))
    t, yaw = np.zeros(2), 0.0
    for k in range(int(num_future)):
        c, s = math.cos(yaw), math.sin(yaw)
        t = t + np.array([c * step_t[0] - s * step_t[1], s * step_t[0] + c * step_t[1]])
        yaw += step_yaw
        out[k, :2], out[k, 3] = t, math.atan2(math.sin(yaw), math.cos(yaw))
    return out


def ego_warp_cv(last, history_poses, ego_height, num_future: int, spec: GridSpec, free: int = FREE):
    """The last frame warped by the constant-velocity, constant-yaw-rate motion of the history.

    Parameters
    ----------
    last : (X, Y, Z) class ids (numpy or torch), the last observed frame in its grid frame.
    history_poses : (T_h, 13) float, ego_height : (T_h,) float — as :func:`constant_velocity_motion`.
    num_future : int, future steps ``T_f``.
    spec : GridSpec, the grid of all frames.

    Returns
    -------
    (T_f, X, Y, Z), same dtype and kind as ``last``.
    """
    return ego_warp(last, constant_velocity_motion(history_poses, ego_height, num_future), spec, free)
