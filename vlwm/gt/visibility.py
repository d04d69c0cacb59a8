"""Which voxels the sensors observed: ``mask_lidar`` and ``mask_camera`` by 3-D ray traversal.

Rays are walked through the grid voxel by voxel with the Amanatides–Woo DDA ("A fast voxel
traversal algorithm", 1987) in index space (:mod:`vlwm.gt.grid`), after clipping each ray to the
grid's box (a sensor above or beside the grid still observes what its rays cross inside).

* **Lidar** (:func:`lidar_visibility`): a ray from the sensor origin to each return.  Every voxel
  it passes through is observed (free space the beam crossed) and so is the voxel of the return
  (the surface it hit).  Only returns count: a spinning lidar reports no rows for beams that hit
  nothing, so no free space is claimed along them.
* **Camera** (:func:`camera_visibility`): a ray through every ``subsample``-th pixel of every
  camera, walked until it enters the first occupied voxel of the frame's class grid (observed, and
  the walk stops: what lies behind is hidden), or reaches the pixel's depth (when depth images are
  given), the camera's ``max_range`` or the grid's edge.

A voxel is in a mask when a ray passes through it (or ends in it); voxels nobody observed are 0 and
can be ignored by training and evaluation, as in Occ3D.  The DDA is a numba kernel;
:func:`traversed_reference` (every voxel of the ray's bounding box tested against the segment) is
the slow check the tests use.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numba
import numpy as np

from vlwm.gt.ego_frame import GridFrame, index_transform
from vlwm.gt.grid import GridSpec
from vlwm.io.frames import Pose, rotate_vectors
from vlwm.io.image_io import DEPTH_SCALE_MM, NO_DEPTH
from vlwm.sim.camera import CameraConfig

DEFAULT_CAMERA_SUBSAMPLE = 4     #: camera rays go through every 4th pixel along rows and columns
DEFAULT_CAMERA_RANGE_M = 1000.0  #: how far a camera ray goes without a depth (as ``CameraConfig.max_range``)


class CameraRays(NamedTuple):
    """Camera rays of one frame, world frame.

    origins : (n, 3) float64, projection centres, local ENU metres.
    directions : (n, 3) float64, unit directions.
    ranges : (n,) float64, metres along each ray to its pixel's depth, or the camera's ``max_range``.
    """

    origins: np.ndarray
    directions: np.ndarray
    ranges: np.ndarray


class PinholeCamera(NamedTuple):
    """What camera visibility needs of a camera (from a :class:`CameraConfig` or a recording's calibration).

    name : str;  K : (3, 3) float64 intrinsics (pixel centres at integers);
    T_body_sensor : (4, 4) float64, optical frame (x right, y down, z forward) -> body;
    width, height : int pixels;  max_range : float metres, the farthest a ray of this camera goes.
    """

    name: str
    K: np.ndarray
    T_body_sensor: np.ndarray
    width: int
    height: int
    max_range: float = DEFAULT_CAMERA_RANGE_M

    @classmethod
    def from_config(cls, cam: CameraConfig) -> "PinholeCamera":
        return cls(cam.name, cam.K(), cam.T_body_sensor(), cam.width, cam.height, cam.max_range)

    @classmethod
    def from_calibration(cls, name: str, entry: dict) -> "PinholeCamera":
        """From a ``sequence.json`` sensor entry (``K``, ``T_body_sensor``, ``width``, ``height``)."""
        try:
            return cls(name, np.asarray(entry["K"], np.float64).reshape(3, 3),
                       np.asarray(entry["T_body_sensor"], np.float64).reshape(4, 4), int(entry["width"]),
                       int(entry["height"]), float(entry.get("max_range", DEFAULT_CAMERA_RANGE_M)))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"camera {name}: calibration needs K (3x3), T_body_sensor (4x4), width and height "
                             f"({exc})") from None


# ------------------------------------------------------------------------------ public


def lidar_visibility(spec: GridSpec, frame: GridFrame, T_world_sensor: np.ndarray,
                     points_sensor: np.ndarray) -> np.ndarray:
    """``mask_lidar``: the voxels crossed by, or ending, the rays from the sensor to its returns.

    Parameters
    ----------
    spec : GridSpec
    frame : GridFrame
        The frame's grid in the world.
    T_world_sensor : (4, 4) float
        Sensor pose: lidar frame -> local ENU world.
    points_sensor : (n, >=3) float
        Returns, lidar frame, metres (x, y, z first; further columns are ignored).

    Returns
    -------
    (X, Y, Z) uint8, 1 = observed.
    """
    mask = np.zeros(spec.shape, np.uint8)
    T = index_transform(spec, frame) @ np.asarray(T_world_sensor, np.float64)
    traverse(mask, T, np.zeros((1, 3)), np.asarray(points_sensor)[:, :3])
    return mask


def camera_visibility(spec: GridSpec, frame: GridFrame, semantics: np.ndarray, free: int,
                      rays: CameraRays) -> np.ndarray:
    """``mask_camera``: the voxels camera rays cross up to and including the first occupied one.

    Parameters
    ----------
    spec : GridSpec
    frame : GridFrame
    semantics : (X, Y, Z) uint8
        The frame's class grid; voxels other than ``free`` stop rays.
    free : int
        The free label.
    rays : CameraRays
        World-frame rays (:func:`camera_rays`).

    Returns
    -------
    (X, Y, Z) uint8, 1 = observed.
    """
    ends = rays.origins + rays.directions * np.asarray(rays.ranges, np.float64)[:, None]
    mask = np.zeros(spec.shape, np.uint8)
    traverse(mask, index_transform(spec, frame), rays.origins, ends, semantics, free)
    return mask


def camera_rays(pose: Pose, cameras: Sequence[PinholeCamera], subsample: int = DEFAULT_CAMERA_SUBSAMPLE,
                depth_mm: dict[str, np.ndarray] | None = None) -> CameraRays:
    """World rays through every ``subsample``-th pixel (from ``subsample // 2``) of each camera.

    Parameters
    ----------
    pose : Pose
        Vehicle pose, T_world_body = ``pose.matrix()``.
    cameras : sequence of PinholeCamera
        Intrinsics and mounts.
    subsample : int
        Pixel stride along rows and columns (1 = every pixel).
    depth_mm : dict name -> (H, W) uint16, optional
        Z-depth images (millimetres, 0 = none) limiting each ray; cameras without one use ``max_range``.
    """
    if subsample < 1:
        raise ValueError(f"camera_rays: subsample must be >= 1, got {subsample}")
    T_wb = pose.matrix()
    origins, directions, ranges = [], [], []
    for cam in cameras:
        v, u = np.mgrid[subsample // 2:cam.height:subsample, subsample // 2:cam.width:subsample]
        K = cam.K
        d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1).reshape(-1, 3)
        d /= np.linalg.norm(d, axis=1, keepdims=True)                                   # optical frame
        T_wc = T_wb @ cam.T_body_sensor
        rng = np.full(len(d), float(cam.max_range))
        depth = None if depth_mm is None else depth_mm.get(cam.name)
        if depth is not None:
            if depth.shape != (cam.height, cam.width):
                raise ValueError(f"camera {cam.name}: depth image {depth.shape} does not match "
                                 f"{cam.height}x{cam.width}")
            raw = depth[v, u].reshape(-1)
            has = raw != NO_DEPTH
            rng[has] = np.minimum(raw[has] / DEPTH_SCALE_MM / d[has, 2], cam.max_range)
        origins.append(np.broadcast_to(T_wc[:3, 3], d.shape))
        directions.append(rotate_vectors(T_wc[:3, :3], d))
        ranges.append(rng)
    if not origins:
        return CameraRays(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    return CameraRays(np.concatenate(origins), np.concatenate(directions), np.concatenate(ranges))


def traverse(mask: np.ndarray, T_index: np.ndarray, origins: np.ndarray, ends: np.ndarray,
             semantics: np.ndarray | None = None, free: int = 0) -> None:
    """Mark (set to 1) the voxels each segment passes through, in place.

    Parameters
    ----------
    mask : (X, Y, Z) uint8
        Updated in place.
    T_index : (4, 4) float
        Affine map from the frame ``origins`` and ``ends`` are given in to index space (identity
        when they are index-space already).
    origins : (n, 3) or (1, 3) float
        Segment starts (one shared start, or one per segment), anywhere: segments are clipped to the grid.
    ends : (n, 3) float
        Segment ends.
    semantics : (X, Y, Z) uint8, optional
        With it, each walk stops after the first voxel whose label is not ``free``.
    free : int
        The free label (only with ``semantics``).
    """
    o = np.ascontiguousarray(origins).reshape(-1, 3)
    e = np.ascontiguousarray(ends).reshape(-1, 3)
    if len(o) not in (1, len(e)):
        raise ValueError(f"traverse: {len(o)} origins for {len(e)} ends (give one, or one per end)")
    stop = semantics is not None
    sem = semantics if stop else np.zeros((1, 1, 1), np.uint8)
    if stop and sem.shape != mask.shape:
        raise ValueError(f"traverse: semantics {sem.shape} and mask {mask.shape} differ")
    _dda_kernel(mask, np.ascontiguousarray(T_index, np.float64), o, e, sem, np.uint8(free), stop)


# ------------------------------------------------------------------------------ kernel


@numba.njit(cache=True, nogil=True, inline="always")
def _affine(T, x, y, z):  # pragma: no cover - compiled
    """``T`` (4, 4) applied to the point (x, y, z)."""
    x, y, z = float(x), float(y), float(z)
    return (T[0, 0] * x + T[0, 1] * y + T[0, 2] * z + T[0, 3],
            T[1, 0] * x + T[1, 1] * y + T[1, 2] * z + T[1, 3],
            T[2, 0] * x + T[2, 1] * y + T[2, 2] * z + T[2, 3])


@numba.njit(cache=True, nogil=True, inline="always")
def _axis_setup(o, d, c):  # pragma: no cover - compiled
    """Step, first boundary crossing (ray parameter) and crossing spacing along one axis, from cell ``c``."""
    if d > 0.0:
        return 1, (c + 1 - o) / d, 1.0 / d
    if d < 0.0:
        return -1, (c - o) / d, -1.0 / d
    return 0, np.inf, np.inf


@numba.njit(cache=True, nogil=True)
def _dda_kernel(mask, T, origins, ends, sem, free, stop):  # pragma: no cover - compiled
    """Amanatides–Woo walk of each segment (mapped by ``T`` into index space), clipped to the grid
    box ``[0, X] x [0, Y] x [0, Z]``.  Scalars and a flat voxel index keep the inner loop in registers."""
    nx, ny, nz = mask.shape
    flat = mask.reshape(-1)
    sem_flat = sem.reshape(-1)
    sx, sy = ny * nz, nz                                     # C-order strides of x and y
    shared = origins.shape[0] == 1
    for r in range(ends.shape[0]):
        q = 0 if shared else r
        ox, oy, oz = _affine(T, origins[q, 0], origins[q, 1], origins[q, 2])
        ex, ey, ez = _affine(T, ends[r, 0], ends[r, 1], ends[r, 2])
        dx, dy, dz = ex - ox, ey - oy, ez - oz
        t0, t1 = 0.0, 1.0
        for o, d, n in ((ox, dx, nx), (oy, dy, ny), (oz, dz, nz)):   # slab clipping of the parameter range
            if d == 0.0:
                if o < 0.0 or o > n:
                    t1 = -1.0
            else:
                ta, tb = (0.0 - o) / d, (n - o) / d
                t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if t0 > t1:
            continue
        cx = min(max(int(np.floor(ox + t0 * dx)), 0), nx - 1)
        cy = min(max(int(np.floor(oy + t0 * dy)), 0), ny - 1)
        cz = min(max(int(np.floor(oz + t0 * dz)), 0), nz - 1)
        stx, tmx, tdx = _axis_setup(ox, dx, cx)
        sty, tmy, tdy = _axis_setup(oy, dy, cy)
        stz, tmz, tdz = _axis_setup(oz, dz, cz)
        idx = cx * sx + cy * sy + cz
        while True:
            flat[idx] = 1
            if stop and sem_flat[idx] != free:
                break
            if tmx < tmy and tmx < tmz:
                if tmx > t1:
                    break
                cx += stx
                if cx < 0 or cx >= nx:
                    break
                idx += stx * sx
                tmx += tdx
            elif tmy < tmz:
                if tmy > t1:
                    break
                cy += sty
                if cy < 0 or cy >= ny:
                    break
                idx += sty * sy
                tmy += tdy
            else:
                if tmz > t1:
                    break
                cz += stz
                if cz < 0 or cz >= nz:
                    break
                idx += stz
                tmz += tdz


# ------------------------------------------------------------------------------ reference


def traversed_reference(origin: np.ndarray, end: np.ndarray, shape: tuple[int, int, int]):
    """Voxels a segment meets, by testing it against every voxel box of its bounding box (slow).

    ``origin``, ``end`` : (3,) float, index space.  Returns ``(index, enter, length)``: (m, 3) int64
    voxels whose closed box the segment meets, (m,) float64 segment parameter where it enters each,
    (m,) float64 length of the piece inside (index units; ~0 where it only touches).
    """
    o, e = np.asarray(origin, np.float64), np.asarray(end, np.float64)
    d = e - o
    lo = np.maximum(np.floor(np.minimum(o, e)) - 1, 0).astype(int)
    hi = np.minimum(np.floor(np.maximum(o, e)) + 1, np.array(shape) - 1).astype(int)
    if np.any(lo > hi):
        return np.zeros((0, 3), np.int64), np.zeros(0), np.zeros(0)
    idx = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    t0, t1 = np.zeros(len(idx)), np.ones(len(idx))
    for a in range(3):
        if d[a] == 0:
            out = (o[a] < idx[:, a]) | (o[a] > idx[:, a] + 1)
            t0[out], t1[out] = 1.0, 0.0
        else:
            ta, tb = (idx[:, a] - o[a]) / d[a], (idx[:, a] + 1 - o[a]) / d[a]
            t0, t1 = np.maximum(t0, np.minimum(ta, tb)), np.minimum(t1, np.maximum(ta, tb))
    meet = t1 >= t0
    return idx[meet].astype(np.int64), t0[meet], (t1 - t0)[meet] * np.linalg.norm(d)
