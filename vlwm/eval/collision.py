"""Collisions of a predicted ego trajectory with the true future occupancy, ST-P3 style, on our grids.

ST-P3 (and OccWorld's planning metric, :mod:`vlwm.eval.stp3`) places the ego box at every predicted
waypoint on a bird's-eye-view obstacle map of that future step and counts a collision when the box
covers an obstacle; steps where the box at the *true* waypoint already collides are not counted
(they stay in the denominator).  Here the obstacles are the ground-truth occupancy grids
themselves, so no agent boxes are needed, and the same rule works in 3D for drones:

* ``mode="bev"`` (rovers): the ego footprint, extruded over the height band
  ``[bottom, bottom + height]`` above the ground (grid z = 0 is the ground under the vehicle,
  :mod:`vlwm.gt.ego_frame`), against voxels of the obstacle classes — the BEV obstacle map of the
  voxels in that band.  The ground classes (road, sidewalk, terrain, other flat) are not
  obstacles; the predicted z is ignored.
* ``mode="3d"`` (drones): the ego box around the predicted 3-D position against every occupied
  voxel (ground included: flying into the street is a collision).

A voxel collides when it **overlaps** the box (a positive-volume intersection; separating axes in
the plane, intervals in z).  ST-P3 tests cell centres instead, which is the same up to half a cell;
overlap is needed here because a drone's box (0.5 m tall) is smaller than an aerial voxel (1.25 m),
so it can sit inside an occupied voxel without containing its centre.
Future frame ``t`` is in its own grid frame; ``frames[t]`` says where that grid sits in the grid
frame of the last observed frame, in which the trajectories are given.  The box is aligned with
the predicted heading when the prediction carries one (``(T, 4)`` poses from
:func:`vlwm.eval.trajectory.poses_from_rel_motion`) and with the last observed frame's axes
otherwise (as ST-P3, which has no heading).  A box outside the grid collides with nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE, NUM_OCC_CLASSES, OCC3D_ID

#: Occupancy classes one drives on: never obstacles in BEV mode.
GROUND_CLASSES: tuple[int, ...] = tuple(OCC3D_ID[n] for n in ("driveable_surface", "other_flat", "sidewalk", "terrain"))
#: Obstacles for rovers: everything occupied but the ground.
BEV_OBSTACLE_CLASSES: tuple[int, ...] = tuple(c for c in range(NUM_OCC_CLASSES)
                                              if c != FREE and c not in GROUND_CLASSES)
#: Obstacles for drones: everything occupied.
ALL_OCCUPIED_CLASSES: tuple[int, ...] = tuple(c for c in range(NUM_OCC_CLASSES) if c != FREE)
MODES = ("bev", "3d")


@dataclass(frozen=True)
class EgoBox:
    """The vehicle as a box in its own frame (x forward, y left, z up from the trajectory point)."""

    length: float
    """Extent along the heading, metres."""
    width: float
    """Extent across, metres."""
    height: float
    """Vertical extent, metres."""
    forward_offset: float = 0.0
    """Box centre ahead of the trajectory point, metres (ST-P3: 0.5)."""
    bottom: float = 0.0
    """Box bottom above the trajectory point, metres (a rover's ground clearance)."""

    def __post_init__(self):
        for name in ("length", "width", "height"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EgoBox.{name} must be positive, got {getattr(self, name)}")


#: A rover: ST-P3's nuScenes car (4.084 x 1.85 m), centred half a wheelbase ahead of the rear-axle
#: origin (conventions.md), 1.5 m tall above 0.2 m of ground clearance.
ROVER_BOX = EgoBox(length=4.084, width=1.85, height=1.5, forward_offset=1.35, bottom=0.2)
#: A drone: 1 m square (the flight planner's body radius 0.5 m), 0.5 m tall above its touch-down point.
DRONE_BOX = EgoBox(length=1.0, width=1.0, height=0.5)


@dataclass(frozen=True)
class CollisionConfig:
    """How collisions are tested for one kind of vehicle."""

    box: EgoBox
    """The ego box."""
    mode: str
    """``"bev"`` (footprint over a height band above the ground) or ``"3d"`` (box at the predicted z)."""
    obstacle_classes: tuple[int, ...]
    """Occupancy labels that count as obstacles."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"CollisionConfig.mode must be one of {MODES}, got {self.mode!r}")


ROVER_COLLISION = CollisionConfig(ROVER_BOX, "bev", BEV_OBSTACLE_CLASSES)
DRONE_COLLISION = CollisionConfig(DRONE_BOX, "3d", ALL_OCCUPIED_CLASSES)
COLLISION_PRESETS = {"rover": ROVER_COLLISION, "drone": DRONE_COLLISION}


def collision_config(agent_type: str) -> CollisionConfig:
    """The preset of ``"rover"`` or ``"drone"`` (a sample's ``agent_type``)."""
    try:
        return COLLISION_PRESETS[agent_type]
    except KeyError:
        raise ValueError(f"no collision preset for agent type {agent_type!r}; presets: {sorted(COLLISION_PRESETS)} "
                         f"(or build a CollisionConfig)") from None


class CollisionResult(NamedTuple):
    """Per-step collision indicators of one sample."""

    pred: np.ndarray     #: (T,) bool, the box at the predicted pose covers an obstacle
    gt: np.ndarray       #: (T,) bool, the box at the true pose does (those steps are not counted)
    counted: np.ndarray  #: (T,) bool, ``pred & ~gt``: what collision rates count


def occupancy_collisions(pred, gt, frames, occupancy, spec: GridSpec, config: CollisionConfig) -> CollisionResult:
    """Collisions of the predicted and the true ego with the true future occupancy.

    Parameters
    ----------
    pred : (T, 2), (T, 3) or (T, 4) float
        Predicted ego positions ``(x forward, y left[, z up[, yaw]])`` in the grid frame of the last
        observed frame (metres, radians).  3-D mode needs z.
    gt : (T, 2), (T, 3) or (T, 4) float
        True ego positions, same frame.  For drones z is the vehicle's height: ``frames[:, 2] +
        ego_height`` of the future frames (a grid frame's origin sits on the ground).
    frames : (T, 4) float
        ``(dx, dy, dz, dyaw)``: each future grid frame in the last observed grid frame
        (:func:`vlwm.eval.trajectory.grid_motion_from_poses`).
    occupancy : (T, X, Y, Z) int
        True future occupancy, class ids, each step in its own grid frame.
    spec : GridSpec
        The grid.
    config : CollisionConfig
        Box, mode and obstacle classes (:data:`ROVER_COLLISION`, :data:`DRONE_COLLISION`).

    Returns
    -------
    :class:`CollisionResult` of (T,) bool arrays.
    """
    occ = np.asarray(occupancy)
    frames = np.asarray(frames, np.float64)
    t = len(occ)
    if occ.shape[1:] != spec.shape or frames.shape != (t, 4):
        raise ValueError(f"occupancy_collisions: occupancy {occ.shape} must be (T, *{spec.shape}) and frames "
                         f"{frames.shape} (T, 4)")
    poses = [_as_poses(a, t, config.mode, name) for a, name in ((pred, "pred"), (gt, "gt"))]
    obstacle = np.zeros(max(int(occ.max()) + 1, NUM_OCC_CLASSES), bool)
    obstacle[list(config.obstacle_classes)] = True
    hits = [np.array([_box_hits(occ[k], obstacle, spec, frames[k], p[k], config) for k in range(t)])
            for p in poses]
    return CollisionResult(hits[0], hits[1], hits[0] & ~hits[1])


def _as_poses(a, t: int, mode: str, name: str) -> np.ndarray:
    """(T, 4) (x, y, z, yaw) with NaN yaw where none was given."""
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or len(a) != t or a.shape[1] not in (2, 3, 4):
        raise ValueError(f"occupancy_collisions: {name} must be (T={t}, 2..4) positions, got {a.shape}")
    if mode == "3d" and a.shape[1] < 3:
        raise ValueError(f"occupancy_collisions: 3-D mode needs z: {name} has shape {a.shape}")
    out = np.zeros((t, 4))
    out[:, 3] = np.nan
    out[:, :a.shape[1]] = a
    return out


def _box_hits(occ: np.ndarray, obstacle: np.ndarray, spec: GridSpec, frame: np.ndarray, pose: np.ndarray,
              config: CollisionConfig) -> bool:
    """Whether any obstacle voxel of one future grid overlaps the ego box at ``pose``.

    ``occ`` (X, Y, Z) is in the future frame's grid; ``pose`` (x, y, z, yaw) and ``frame`` are in
    the last observed frame's grid frame.
    """
    box = config.box
    yaw = 0.0 if math.isnan(pose[3]) else pose[3]
    c, s = math.cos(yaw), math.sin(yaw)
    centre = pose[:2] + box.forward_offset * np.array([c, s])                 # box centre, last grid frame
    # The box centre in the future grid frame, to cut out the voxels that can touch the box.
    fc, fs = math.cos(frame[3]), math.sin(frame[3])
    d = centre - frame[:2]
    local = np.array([fc * d[0] + fs * d[1], -fs * d[0] + fc * d[1]])
    if config.mode == "bev":
        z0 = box.bottom                                                       # above the future frame's ground
    else:
        z0 = pose[2] + box.bottom - frame[2]                                  # predicted z, in the future grid
    reach = 0.5 * math.hypot(box.length, box.width)
    lo = spec.to_index_space(np.array([[local[0] - reach, local[1] - reach, z0]]))[0]
    hi = spec.to_index_space(np.array([[local[0] + reach, local[1] + reach, z0 + box.height]]))[0]
    i0, j0, k0 = np.maximum(np.floor(lo).astype(np.int64), 0)
    i1, j1, k1 = np.minimum(np.ceil(hi).astype(np.int64), np.array(spec.shape))
    if i0 >= i1 or j0 >= j1 or k0 >= k1:
        return False
    window = occ[i0:i1, j0:j1, k0:k1]
    cand = np.argwhere(obstacle[window])                                     # (n, 3) voxels in the window
    if not len(cand):
        return False
    centres = spec.centres(cand + np.array([i0, j0, k0]))                     # (n, 3), future grid frame
    # Future grid frame -> last observed grid frame: voxel centres relative to the box centre.
    x = fc * centres[:, 0] - fs * centres[:, 1] + frame[0] - centre[0]
    y = fs * centres[:, 0] + fc * centres[:, 1] + frame[1] - centre[1]
    half = spec.size / 2
    # Separating axes: the box's two axes and the voxel's two (the future grid's, turned by its yaw).
    box_axes = ((c, s, box.length / 2), (-s, c, box.width / 2))
    vox_axes = ((fc, fs, half[0]), (-fs, fc, half[1]))
    inside = np.abs(centres[:, 2] - (z0 + box.height / 2)) < box.height / 2 + half[2]      # z intervals overlap
    for nx, ny, _ in box_axes + vox_axes:
        reach_box = sum(r * abs(ax * nx + ay * ny) for ax, ay, r in box_axes)
        reach_vox = sum(r * abs(ax * nx + ay * ny) for ax, ay, r in vox_axes)
        inside &= np.abs(x * nx + y * ny) < reach_box + reach_vox
    return bool(inside.any())
