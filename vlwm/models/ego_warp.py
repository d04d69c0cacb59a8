"""Ego-motion warps of occupancy grids and feature maps between grid frames, in torch.

Frames (:mod:`vlwm.gt.ego_frame`): every grid sits in its own **grid frame** — centred on the
vehicle, x forward along its heading, y left, z up from the ground under it, level.  Two grid
frames therefore differ by a translation and a turn about z only.  A **frame pose** is a
``(..., 4)`` float row ``(x, y, z, yaw)``: the origin (metres) and heading (rad, counter-clockwise)
of one grid frame expressed in another (the *reference*, usually the last observed frame) — the
``motion`` argument of :func:`vlwm.eval.baselines.ego_warp` and the rows of
:func:`vlwm.eval.trajectory.grid_motion_from_poses`.

* Frame algebra on poses: :func:`compose`, :func:`invert`, :func:`relative`, conversions to and
  from ``(4, 4)`` transforms (:func:`pose_to_matrix`, :func:`matrix_to_pose`, which refuses a
  transform that is not level) and :func:`frame_poses_from_pose13` (recorded 13-d poses -> frame
  poses, torch twin of ``grid_motion_from_poses``).
* Resampling: :func:`warp_labels` (class ids, nearest voxel, ``fill`` outside — :data:`FREE` by
  default), :func:`warp_features` (``(B, C, X, Y, Z)`` voxel features or ``(B, C, X, Y)`` BEV
  maps, nearest, ``fill`` outside), and :func:`ego_warp`, the eval baseline's signature.

Resampling rule, identical to :func:`vlwm.eval.baselines.ego_warp` to the bit (tested): target
voxel ``v`` of a frame whose pose in the source frame is ``(dx, dy, dz, yaw)`` takes the value of
the source voxel containing ``R(yaw) c_v + (dx, dy, dz)``, ``c_v`` its centre; the arithmetic is
float64 in the same order (``floor((coord - lo) / size)``), so voxel-boundary rounding agrees too.
Everything is vectorised over the batch and the steps (no Python loop), on any device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from vlwm.angles import wrap_angle
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE

#: A (4, 4) transform between grid frames must be level: |R[2, :2]|, |R[:2, 2]| below this.
LEVEL_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------
# Frame algebra: (..., 4) poses (x, y, z, yaw)
# ---------------------------------------------------------------------------------------------


def compose(a: Tensor, b: Tensor) -> Tensor:
    """Pose of frame C in frame A from ``a`` (B in A) and ``b`` (C in B): ``a ∘ b``.

    a, b : (..., 4) float (x, y, z, yaw), broadcastable.  Returns (..., 4), yaw not wrapped.
    """
    c, s = torch.cos(a[..., 3]), torch.sin(a[..., 3])
    x = a[..., 0] + c * b[..., 0] - s * b[..., 1]
    y = a[..., 1] + s * b[..., 0] + c * b[..., 1]
    return torch.stack([x, y, a[..., 2] + b[..., 2], a[..., 3] + b[..., 3]], dim=-1)


def invert(a: Tensor) -> Tensor:
    """Pose of frame A in frame B from ``a`` (B in A).  (..., 4) -> (..., 4)."""
    c, s = torch.cos(a[..., 3]), torch.sin(a[..., 3])
    x = -(c * a[..., 0] + s * a[..., 1])
    y = -(-s * a[..., 0] + c * a[..., 1])
    return torch.stack([x, y, -a[..., 2], -a[..., 3]], dim=-1)


def relative(source: Tensor, target: Tensor) -> Tensor:
    """Pose of ``target`` in ``source``, both given in one reference frame: ``invert(source) ∘ target``.

    source, target : (..., 4) float, broadcastable.  When ``source`` is exactly the identity (the
    reference frame itself) the result equals ``target`` bit for bit: the rotation is by
    cos 0 = 1, sin 0 = 0.
    """
    c, s = torch.cos(source[..., 3]), torch.sin(source[..., 3])
    dx, dy = target[..., 0] - source[..., 0], target[..., 1] - source[..., 1]
    return torch.stack([c * dx + s * dy, -s * dx + c * dy, target[..., 2] - source[..., 2],
                        target[..., 3] - source[..., 3]], dim=-1)


def pose_to_matrix(pose: Tensor) -> Tensor:
    """(..., 4) poses -> (..., 4, 4) homogeneous transforms mapping points of the posed frame into the reference."""
    c, s = torch.cos(pose[..., 3]), torch.sin(pose[..., 3])
    m = torch.zeros(*pose.shape[:-1], 4, 4, dtype=pose.dtype, device=pose.device)
    m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1] = c, -s, s, c
    m[..., 2, 2] = m[..., 3, 3] = 1.0
    m[..., :3, 3] = pose[..., :3]
    return m


def matrix_to_pose(matrix: Tensor) -> Tensor:
    """(..., 4, 4) level transforms -> (..., 4) poses (x, y, z, yaw).

    Raises ``ValueError`` when a transform tilts z (grid frames are level, :mod:`vlwm.gt.ego_frame`):
    pass the grid-frame transform, not a body pose with roll and pitch.
    """
    m = torch.as_tensor(matrix)
    if m.shape[-2:] != (4, 4):
        raise ValueError(f"matrix_to_pose: expected (..., 4, 4) transforms, got {tuple(m.shape)}")
    tilt = torch.cat([m[..., 2, :2], m[..., :2, 2]], dim=-1).abs()
    if tilt.numel() and float(tilt.max()) > LEVEL_TOLERANCE:
        raise ValueError(f"matrix_to_pose: transform is not level (rotation couples z with x/y by up to "
                         f"{float(tilt.max()):.3g}); grid frames differ by a turn about z only — build the "
                         f"transform from the grid frames (GridFrame.T_world_grid), not from body poses")
    return torch.stack([m[..., 0, 3], m[..., 1, 3], m[..., 2, 3], torch.atan2(m[..., 1, 0], m[..., 0, 0])], dim=-1)


def as_frame_poses(motion, lead_dims: int, device: torch.device | None = None) -> Tensor:
    """float64 (L..., 4) poses from (L..., 4) poses or (L..., 4, 4) level transforms (numpy or torch).

    ``lead_dims`` is the number L of leading dimensions (2 for (B, T, ...)); it tells a (B, 4, 4)
    stack of four poses from a 4 x 4 transform.
    """
    m = torch.as_tensor(np.ascontiguousarray(motion) if isinstance(motion, np.ndarray) else motion)
    m = m.to(device=device, dtype=torch.float64)
    if m.dim() == lead_dims + 2 and m.shape[-2:] == (4, 4):
        return matrix_to_pose(m)
    if m.dim() != lead_dims + 1 or m.shape[-1] != 4:
        raise ValueError(f"frame poses must be ({lead_dims} leading dims, 4) (x, y, z, yaw) or (..., 4, 4) "
                         f"transforms, got {tuple(m.shape)}")
    return m


def frame_poses_from_pose13(poses: Tensor, ego_height: Tensor, reference: int) -> Tensor:
    """Grid-frame poses of recorded frames in the grid frame of frame ``reference`` (torch).

    Parameters
    ----------
    poses : (..., N, 13) float — ``[x, y, z, qw, qx, qy, qz, ...]`` world frame (a sample's
        ``history_poses`` / ``future_poses``).
    ego_height : (..., N) float — vehicle height above the ground under it; the grid origin sits at
        ``z - ego_height``.
    reference : int — index of the reference frame (the last history frame, ``T_h - 1``).

    Returns
    -------
    (..., N, 4) float64 — the same numbers as :func:`vlwm.eval.trajectory.grid_motion_from_poses`
    up to float rounding (yaw from the quaternion's level projection, wrapped to [-pi, pi)).
    """
    p, h = torch.as_tensor(poses, dtype=torch.float64), torch.as_tensor(ego_height, dtype=torch.float64)
    if p.shape[-1] != 13 or tuple(h.shape) != tuple(p.shape[:-1]):
        raise ValueError(f"frame_poses_from_pose13: poses must be (..., N, 13) and ego_height (..., N), got "
                         f"{tuple(p.shape)} and {tuple(h.shape)}")
    w, x, y, z = p[..., 3], p[..., 4], p[..., 5], p[..., 6]
    # Heading of the body x axis on the level plane: atan2(R10, R00), homogeneous in q (any norm).
    yaw = torch.atan2(2 * (x * y + w * z), w * w + x * x - y * y - z * z)
    origin = torch.stack([p[..., 0], p[..., 1], p[..., 2] - h, yaw], dim=-1)   # (..., N, 4) world
    rel = relative(origin[..., reference:reference + 1, :], origin)
    return torch.cat([rel[..., :3], wrap_angle(rel[..., 3:])], dim=-1)


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


def _axis_centres(spec: GridSpec, device) -> list[Tensor]:
    """Voxel-centre coordinates (metres, float64) along x, y, z — computed as the eval baseline does."""
    return [torch.tensor(spec.point_cloud_range[a] + (np.arange(n) + 0.5) * spec.voxel_size[a],
                         dtype=torch.float64, device=device) for a, n in enumerate(spec.shape)]


def _index(coord: Tensor, spec: GridSpec, axis: int) -> Tensor:
    """int64 voxel index along ``axis`` of coordinates (metres); may fall outside the grid."""
    return torch.floor((coord - spec.point_cloud_range[axis]) / spec.voxel_size[axis]).long()


def source_indices(frames: Tensor, spec: GridSpec, with_z: bool = True) -> tuple[Tensor, Tensor]:
    """Flat source index and inside-mask of every target voxel (column) for each frame pose.

    Parameters
    ----------
    frames : (N, 4) float64 — pose of each target grid frame in the source grid frame.
    spec : GridSpec of both grids.
    with_z : False for BEV maps (x, y only; dz ignored).

    Returns
    -------
    index : (N, X, Y, Z) int64 into the flattened (X*Y*Z) source grid (``(N, X, Y)`` into X*Y
        without z), clamped in range.
    inside : bool of the same shape — False where the target centre falls outside the source grid.
    """
    nx, ny, nz = spec.shape
    ax = _axis_centres(spec, frames.device)
    xs, ys = ax[0][:, None], ax[1][None, :]                                     # (X, 1), (1, Y)
    dx, dy, dz, yaw = (frames[:, i, None, None] for i in range(4))              # each (N, 1, 1)
    c, s = torch.cos(yaw), torch.sin(yaw)
    ix = _index(c * xs - s * ys + dx, spec, 0)                                  # (N, X, Y)
    iy = _index(s * xs + c * ys + dy, spec, 1)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)                      # (N, X, Y)
    if not with_z:
        return (ix * ny + iy).clamp(0, nx * ny - 1), inside
    iz = _index(ax[2][None, :] + dz[:, 0], spec, 2)                             # (N, Z)
    inside = inside[..., None] & ((iz >= 0) & (iz < nz))[:, None, None, :]      # (N, X, Y, Z)
    lin = ((ix * ny + iy) * nz)[..., None] + iz[:, None, None, :]               # (N, X, Y, Z)
    return lin.clamp(0, nx * ny * nz - 1), inside


def warp_labels(grid: Tensor, frames, spec: GridSpec, fill: int = FREE) -> Tensor:
    """Resample class-id grids into other grid frames (nearest voxel, ``fill`` outside).

    Parameters
    ----------
    grid : (B, X, Y, Z) integer class ids (uint8 or int64), each in its source grid frame.
    frames : (B, T, 4) poses (x, y, z, yaw) or (B, T, 4, 4) level transforms of the T target grid
        frames in the source grid frame (metres, radians); numpy or torch.
    spec : GridSpec of all grids.
    fill : label of target voxels whose centre falls outside the source grid (:data:`FREE`).

    Returns
    -------
    (B, T, X, Y, Z), ``grid``'s dtype and device.
    """
    shape = tuple(spec.shape)
    if grid.dim() != 4 or tuple(grid.shape[1:]) != shape:
        raise ValueError(f"warp_labels: grid must be (B, X, Y, Z) = (B, {shape}), got {tuple(grid.shape)}")
    f = as_frame_poses(frames, 2, grid.device)
    if f.dim() != 3 or f.shape[0] != grid.shape[0]:
        raise ValueError(f"warp_labels: frames must be (B, T, 4) with B = {grid.shape[0]}, got {tuple(f.shape)}")
    b, t = f.shape[:2]
    index, inside = source_indices(f.reshape(b * t, 4), spec)                  # (B*T, X, Y, Z)
    flat = grid.reshape(b, 1, -1).expand(b, t, -1).reshape(b * t, -1)          # (B*T, X*Y*Z)
    vals = torch.gather(flat, 1, index.reshape(b * t, -1)).reshape(b * t, *shape)
    out = torch.where(inside, vals, torch.full((), fill, dtype=grid.dtype, device=grid.device))
    return out.reshape(b, t, *shape)


def warp_features(feat: Tensor, frames, spec: GridSpec, fill: float = 0.0) -> Tensor:
    """Resample feature maps into other grid frames (nearest voxel / column, ``fill`` outside).

    Parameters
    ----------
    feat : (B, C, X, Y, Z) voxel features, or (B, C, X, Y) BEV features (then only x, y, yaw of
        the frames are used: a BEV map has no height to shift).
    frames : (B, T, 4) poses or (B, T, 4, 4) level transforms of the targets in the source frame.
    spec : GridSpec of the grids (its x, y sizes must match the map).
    fill : value of target cells outside the source map.

    Returns
    -------
    (B, T, C, X, Y[, Z]), ``feat``'s dtype; differentiable with respect to ``feat``.
    """
    bev = feat.dim() == 4
    shape = tuple(spec.shape[:2]) if bev else tuple(spec.shape)
    if feat.dim() not in (4, 5) or tuple(feat.shape[2:]) != shape:
        raise ValueError(f"warp_features: feat must be (B, C, {', '.join(map(str, shape))}), got {tuple(feat.shape)}")
    f = as_frame_poses(frames, 2, feat.device)
    if f.dim() != 3 or f.shape[0] != feat.shape[0]:
        raise ValueError(f"warp_features: frames must be (B, T, 4) with B = {feat.shape[0]}, got {tuple(f.shape)}")
    b, t = f.shape[:2]
    c = feat.shape[1]
    index, inside = source_indices(f.reshape(b * t, 4), spec, with_z=not bev)  # (B*T, *shape)
    flat = feat.reshape(b, 1, c, -1).expand(b, t, c, -1).reshape(b * t, c, -1)  # (B*T, C, prod(shape))
    idx = index.reshape(b * t, 1, -1).expand(b * t, c, -1)
    vals = torch.gather(flat, 2, idx).reshape(b * t, c, *shape)
    out = torch.where(inside[:, None], vals, torch.full((), fill, dtype=feat.dtype, device=feat.device))
    return out.reshape(b, t, c, *shape)


def ego_warp(last, motion, spec: GridSpec, free: int = FREE):
    """The eval baseline's interface (:func:`vlwm.eval.baselines.ego_warp`), vectorised.

    last : (..., X, Y, Z) class ids (numpy or torch); motion : (..., T, 4) poses or (..., T, 4, 4)
    transforms of the future grid frames in ``last``'s.  Returns (..., T, X, Y, Z) of ``last``'s
    dtype and kind.
    """
    as_numpy = not isinstance(last, torch.Tensor)
    grid = torch.as_tensor(np.ascontiguousarray(last)) if as_numpy else last
    lead = tuple(grid.shape[:-3])
    m = as_frame_poses(motion, len(lead) + 1, grid.device)
    if tuple(grid.shape[-3:]) != tuple(spec.shape) or tuple(m.shape[:-2]) != lead:
        raise ValueError(f"ego_warp: grid {tuple(grid.shape)} and motion {tuple(m.shape)} must be (..., X, Y, Z) "
                         f"with X, Y, Z = {tuple(spec.shape)} and (..., T, 4) with the same leading dims")
    n = math.prod(lead)
    out = warp_labels(grid.reshape(n, *spec.shape), m.reshape(n, -1, 4), spec, fill=free)
    out = out.reshape(*lead, m.shape[-2], *spec.shape)
    return out.numpy() if as_numpy else out
