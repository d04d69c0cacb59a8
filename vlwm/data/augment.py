"""Augmentations of whole samples (the guide's domain-adaptation tips, §5.6).

Configured with the guide's dict (``DatasetConfig.transform``)::

    transform = dict(RandomFlip=dict(prob=0.5), RandomRotate=dict(angle=[-5, 5]), PointCloudNoise=dict(std=0.02))

Every transform draws **once per sample** and applies that draw to every frame, so history and
future stay one consistent scene.  They act on a sample dict (keys of
:mod:`vlwm.data.dataset`) in place and skip keys the sample does not carry.

**RandomFlip(prob)** — the mirror image across the vehicle's x axis (y -> -y in every frame's ego
frame).  It is what a reflection of the world across the vertical plane through the *current*
frame's (last history frame's) x axis produces, so each frame's grid, masks, instance ids and lidar
flip their y, world poses reflect across that plane (positions, orientation ``R' = F R S``, world velocity
``F v``, body rates ``(-wx, wy, -wz)``), ``rel_motion``/``rel_poses``/``future_offset`` negate
their lateral component and yaw change, and ``gt_mode`` swaps left and right.  Cameras: left and
right partners swap and every image flips horizontally; intrinsics and extrinsics follow exactly
(``cx -> W - 1 - cx``, ``T' = S T S_opt``).  Needs a grid symmetric in y (both presets are).

**RandomRotate(angle=[lo, hi])** — a yaw offset θ (degrees, uniform in [lo, hi]): every frame's
content turns by +θ about the vehicle's vertical axis (grid, masks and instance ids resampled by
nearest voxel centre, voxels from outside the grid become free / unobserved / no instance), the
vehicle's heading becomes ``yaw - θ`` (orientation ``Rz(-θ) R``; positions and world velocities
unchanged), planar ego vectors rotate by θ, ``gt_mode`` is re-derived from the rotated
``future_offset``, lidar points and camera extrinsics rotate with the body.  Images are not
resampled (a yaw offset of the rig is expressed in ``cam_extrinsics``).

**PointCloudNoise(std)** — Gaussian noise (metres) on the x, y, z of every real lidar point.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from vlwm.data.trajectory import (COMMAND_THRESHOLD_M, command_from_offset, pose13_rotations, pose13_yaws,
                                  set_pose13_rotations)
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE

TRANSFORM_PARAMS: dict[str, tuple[str, ...]] = {
    "RandomFlip": ("prob",), "RandomRotate": ("angle",), "PointCloudNoise": ("std",)}
OCC_KEYS = ("history_occupancy", "future_occupancy")
MASK_KEYS = ("history_mask_lidar", "history_mask_camera", "future_mask_lidar", "future_mask_camera")
#: Per-voxel instance ids: moved with the grids, 0 (no instance) where a rotation brings in outside voxels.
INSTANCE_KEYS = ("history_instances", "future_instances")
#: Every (T, X, Y, Z) grid of a sample.
GRID_KEYS = OCC_KEYS + MASK_KEYS + INSTANCE_KEYS
POSE_KEYS = ("history_poses", "future_poses")
#: Camera partners under a left-right mirror (a camera missing here maps to itself).
MIRROR_CAMERA = {"CAM_FRONT_LEFT": "CAM_FRONT_RIGHT", "CAM_FRONT_RIGHT": "CAM_FRONT_LEFT",
                 "CAM_BACK_LEFT": "CAM_BACK_RIGHT", "CAM_BACK_RIGHT": "CAM_BACK_LEFT"}
S_Y = np.diag([1.0, -1.0, 1.0])        #: mirror y (body / ego frame)
S_OPTICAL = np.diag([-1.0, 1.0, 1.0, 1.0])  #: mirror the optical x axis (image columns)


def _hom(r: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = r
    return t


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _frames_poses(sample: dict) -> tuple[np.ndarray, int]:
    """(T, 13) float64 poses of all frames (history then future) and the history length."""
    h = np.asarray(sample["history_poses"], np.float64)
    return np.concatenate([h, np.asarray(sample["future_poses"], np.float64)]), len(h)


def _store_poses(sample: dict, poses: np.ndarray, t_h: int) -> None:
    dtype = sample["history_poses"].dtype
    sample["history_poses"] = poses[:t_h].astype(dtype)
    sample["future_poses"] = poses[t_h:].astype(dtype)


def _transform_lidar(sample: dict, body_maps: np.ndarray) -> None:
    """Apply per-frame body-frame linear maps (T, 3, 3) to the lidar points (lidar frame, via ``T_body_lidar``)."""
    if "lidar" not in sample:
        return
    t_bl = np.asarray(sample["T_body_lidar"], np.float64)
    t_lb = np.linalg.inv(t_bl)
    pts = sample["lidar"]
    for t, m in enumerate(body_maps):
        k = int(sample["lidar_num_points"][t])
        full = t_lb @ _hom(m) @ t_bl
        pts[t, :k, :3] = (pts[t, :k, :3].astype(np.float64) @ full[:3, :3].T + full[:3, 3]).astype(pts.dtype)


class RandomFlip:
    """Mirror across the vehicle's x axis with probability ``prob`` (see the module docstring)."""

    def __init__(self, prob: float, grid: GridSpec):
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"RandomFlip: prob must lie in [0, 1], got {prob!r}")
        y0, y1 = grid.point_cloud_range[1], grid.point_cloud_range[4]
        if not np.isclose(y0, -y1):
            raise ValueError(f"RandomFlip needs a grid symmetric in y (y0 = -y1); the grid's y range is [{y0:g}, {y1:g}]")
        self.prob = float(prob)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if not rng.random() < self.prob:
            return sample
        for key in GRID_KEYS:
            if key in sample:
                sample[key] = np.ascontiguousarray(sample[key][:, :, ::-1, :])
        poses, t_h = _frames_poses(sample)
        ref = poses[t_h - 1]
        yaw = pose13_yaws(ref[None])[0]
        f = _rz(yaw) @ S_Y @ _rz(-yaw)                                   # world reflection, det -1
        poses[:, :3] = (poses[:, :3] - ref[:3]) @ f.T + ref[:3]
        set_pose13_rotations(poses, f @ pose13_rotations(poses) @ S_Y)
        poses[:, 7:10] = poses[:, 7:10] @ f.T
        poses[:, 10:13] *= (-1.0, 1.0, -1.0)
        _store_poses(sample, poses, t_h)
        for key, cols in (("rel_motion", (0, 3)), ("rel_poses", (0,)), ("future_offset", (0,))):
            if key in sample:
                sample[key][:, list(cols)] *= -1
        if "gt_mode" in sample:
            sample["gt_mode"] = np.ascontiguousarray(sample["gt_mode"][:, [1, 0, 2]])
        _transform_lidar(sample, np.repeat(S_Y[None], len(poses), axis=0))
        if "images" in sample:
            self._flip_cameras(sample)
        return sample

    @staticmethod
    def _flip_cameras(sample: dict) -> None:
        names = list(sample["camera_names"])
        partner = [names.index(MIRROR_CAMERA.get(n, n)) if MIRROR_CAMERA.get(n, n) in names else i
                   for i, n in enumerate(names)]
        images = sample["images"]                                        # (T, C, H, W, 3)
        sample["images"] = np.ascontiguousarray(images[:, partner, :, ::-1, :])
        width = images.shape[3]
        k = sample["cam_intrinsics"][partner].copy()                     # (C, 3, 3)
        k[:, 0, 2] = width - 1 - k[:, 0, 2]
        sample["cam_intrinsics"] = k
        ext = np.asarray(sample["cam_extrinsics"], np.float64)[:, partner]  # (T, C, 4, 4)
        sample["cam_extrinsics"] = (_hom(S_Y) @ ext @ S_OPTICAL).astype(sample["cam_extrinsics"].dtype)


class RandomRotate:
    """Yaw offset drawn uniformly from ``angle = [lo, hi]`` degrees (see the module docstring)."""

    def __init__(self, angle, grid: GridSpec, free: int = FREE, command_threshold: float = COMMAND_THRESHOLD_M):
        bounds = np.asarray(angle, np.float64).ravel()
        if bounds.size != 2 or not bounds[0] <= bounds[1]:
            raise ValueError(f"RandomRotate: angle must be [lo, hi] degrees with lo <= hi, got {angle!r}")
        lo, hi = float(bounds[0]), float(bounds[1])
        self.lo, self.hi, self.grid, self.free, self.command_threshold = lo, hi, grid, free, command_threshold

    def index_map(self, theta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source voxel (i, j) of every target column (X, Y) for content turned by ``theta`` rad, and inside (X, Y) bool."""
        g = self.grid
        (x0, y0, _), (dx, dy, _) = g.point_cloud_range[:3], g.voxel_size
        nx, ny, _ = g.shape
        xc = x0 + (np.arange(nx) + 0.5) * dx
        yc = y0 + (np.arange(ny) + 0.5) * dy
        x, y = np.meshgrid(xc, yc, indexing="ij")
        c, s = np.cos(theta), np.sin(theta)
        xs, ys = c * x + s * y, -s * x + c * y                          # Rz(-theta) @ target centre
        i = np.floor((xs - x0) / dx).astype(np.int64)
        j = np.floor((ys - y0) / dy).astype(np.int64)
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        return np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1), inside

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        theta = np.deg2rad(rng.uniform(self.lo, self.hi))
        if theta == 0.0:
            return sample
        i, j, inside = self.index_map(theta)
        for key in GRID_KEYS:
            if key in sample:
                arr = sample[key]
                out = arr[:, i, j, :]                                    # (T, X, Y, Z) gather
                out[:, ~inside, :] = self.free if key in OCC_KEYS else 0
                sample[key] = out
        poses, t_h = _frames_poses(sample)
        r = pose13_rotations(poses)
        r_new = _rz(-theta) @ r
        body_maps = np.transpose(r, (0, 2, 1)) @ _rz(theta) @ r          # p_body' = R^T Rz(theta) R p_body
        poses[:, 10:13] = np.einsum("tji,tj->ti", r_new, np.einsum("tij,tj->ti", r, poses[:, 10:13]))
        set_pose13_rotations(poses, r_new)
        _store_poses(sample, poses, t_h)
        rot2 = _rz(theta)[:2, :2]
        for key, cols in (("rel_motion", slice(0, 2)), ("rel_poses", slice(0, 2)), ("future_offset", slice(0, 2))):
            if key in sample:
                sample[key][:, cols] = sample[key][:, cols] @ rot2.T
        if "future_offset" in sample and "gt_mode" in sample:
            sample["gt_mode"] = command_from_offset(sample["future_offset"], self.command_threshold)
        _transform_lidar(sample, body_maps)
        if "cam_extrinsics" in sample:
            ext = np.asarray(sample["cam_extrinsics"], np.float64)
            maps = np.stack([_hom(m) for m in body_maps])[:, None]      # (T, 1, 4, 4)
            sample["cam_extrinsics"] = (maps @ ext).astype(sample["cam_extrinsics"].dtype)
        return sample


class PointCloudNoise:
    """Gaussian noise of ``std`` metres on every real lidar point's x, y, z."""

    def __init__(self, std: float):
        if not float(std) >= 0:
            raise ValueError(f"PointCloudNoise: std must be >= 0 metres, got {std!r}")
        self.std = float(std)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if "lidar" not in sample or self.std == 0:
            return sample
        pts = sample["lidar"]
        for t in range(len(pts)):
            k = int(sample["lidar_num_points"][t])
            pts[t, :k, :3] += rng.normal(0.0, self.std, (k, 3)).astype(pts.dtype)
        return sample


class Compose:
    """Transforms applied in the configured order, all with the same generator."""

    def __init__(self, transforms: list):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __len__(self) -> int:
        return len(self.transforms)


def parse_transform(spec: Mapping[str, Mapping[str, Any]] | None, grid: GridSpec, free: int = FREE,
                    command_threshold: float = COMMAND_THRESHOLD_M) -> Compose:
    """Build the transforms of a guide-style dict; unknown names or parameters are errors."""
    if spec is None:
        return Compose([])
    if not isinstance(spec, Mapping):
        raise ValueError(f"transform must be a dict like {{'RandomFlip': {{'prob': 0.5}}}}, got {type(spec).__name__}")
    out = []
    for name, params in spec.items():
        if name not in TRANSFORM_PARAMS:
            raise ValueError(f"transform: unknown augmentation {name!r}; known: {sorted(TRANSFORM_PARAMS)}")
        params = dict(params or {})
        allowed = TRANSFORM_PARAMS[name]
        wrong = sorted(set(params) - set(allowed))
        missing = sorted(set(allowed) - set(params))
        if wrong or missing:
            raise ValueError(f"transform {name}: parameters must be exactly {list(allowed)}; "
                             f"unknown {wrong}, missing {missing}")
        if name == "RandomFlip":
            out.append(RandomFlip(params["prob"], grid))
        elif name == "RandomRotate":
            out.append(RandomRotate(params["angle"], grid, free, command_threshold))
        else:
            out.append(PointCloudNoise(params["std"]))
    return Compose(out)
