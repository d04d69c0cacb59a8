"""The grid frame of one frame: centred on the vehicle, turned with its heading, level, on the ground.

Grid frame (metres): **x** forward along the vehicle's heading, **y** left, **z** up; origin at the
vehicle's ``(x, y)`` and at ``ground_z``, the ground height under the vehicle (terrain height
field, or the pose file's ``ground_z``).  Roll and pitch are removed: only the yaw (heading of the
body x axis projected on the level plane) turns the grid, so z stays parallel to gravity and a
voxel's height above the street does not change when a drone banks.  Hence::

    p_world = R_z(yaw) @ p_grid + (x, y, ground_z)

and the grid's voxel ``(i, j, k)`` sits at ``p_world`` of its centre (:meth:`GridSpec.centres`).
A rover's grid (``occ3d``: z in [-1, 5.4]) and a drone's (``aerial``: z in [-2, 149.25]) both keep
the street in the same voxel layers whatever the vehicle's own height.

Also here: :func:`estimate_ground_z` for recordings without a scene, and :func:`warp_to_frame`,
nearest-voxel resampling of one frame's grid into another's (temporal checks, augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlwm.gt.grid import GridSpec
from vlwm.io.frames import Pose, invert_transform, make_transform, transform_points

#: Ground points within this horizontal radius (m) of the vehicle estimate its ground height.
GROUND_ESTIMATE_RADIUS_M = 10.0
#: Without ground labels, this low percentile of nearby point heights stands for the ground.
GROUND_ESTIMATE_PERCENTILE = 5.0




def rotation_z(yaw: float) -> np.ndarray:
    """(3, 3) float64 rotation by ``yaw`` (rad, counter-clockwise) about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class GridFrame:
    """Where one frame's grid frame sits in the world.

    Attributes
    ----------
    x, y : float
        Vehicle position, local ENU metres: the grid frame's origin in x and y.
    ground_z : float
        Ground height under the vehicle, local ENU metres: the grid frame's z = 0.
    yaw : float
        Vehicle heading, rad counter-clockwise from east: the grid frame's x axis.
    """

    x: float
    y: float
    ground_z: float
    yaw: float

    @classmethod
    def from_pose(cls, pose: Pose, ground_z: float) -> "GridFrame":
        """The grid frame of a vehicle at ``pose`` over ground at ``ground_z`` (m, world z)."""
        x, y, _ = (float(v) for v in pose.position)
        return cls(x, y, float(ground_z), pose.yaw)

    @property
    def origin(self) -> np.ndarray:
        """(3,) float64 grid-frame origin in the world, metres."""
        return np.array([self.x, self.y, self.ground_z])

    def T_world_grid(self) -> np.ndarray:
        """(4, 4) float64: maps grid-frame points into the world frame."""
        return make_transform(rotation_z(self.yaw), self.origin)

    def T_grid_world(self) -> np.ndarray:
        """(4, 4) float64: maps world points into the grid frame."""
        return invert_transform(self.T_world_grid())

    def to_grid(self, points_world: np.ndarray) -> np.ndarray:
        """(n, 3) float64 grid-frame positions of world points (n, 3), metres."""
        return transform_points(self.T_grid_world(), points_world)

    def to_world(self, points_grid: np.ndarray) -> np.ndarray:
        """(n, 3) float64 world positions of grid-frame points (n, 3), metres."""
        return transform_points(self.T_world_grid(), points_grid)

    def to_json(self) -> dict:
        return {"x": self.x, "y": self.y, "ground_z": self.ground_z, "yaw": self.yaw}


def index_transform(spec: GridSpec, frame: GridFrame) -> np.ndarray:
    """(4, 4) float64 affine map from the world to ``spec``'s index space in ``frame``'s grid."""
    return np.diag(np.r_[1.0 / spec.size, 1.0]) @ make_transform(np.eye(3), -spec.lower) @ frame.T_grid_world()


def estimate_ground_z(points_world: np.ndarray, vehicle_xy, ground: np.ndarray | None = None,
                      radius: float = GROUND_ESTIMATE_RADIUS_M) -> float | None:
    """Ground height under a vehicle from its lidar points, for recordings without a scene or ``ground_z``.

    Parameters
    ----------
    points_world : (n, 3) float
        Lidar points, world frame, metres.
    vehicle_xy : (2,) float
        Vehicle position, world frame, metres.
    ground : (n,) bool, optional
        Points labelled as ground (driveable surface, sidewalk, terrain, other flat).  With any near
        the vehicle, their median height is the answer; otherwise the
        :data:`GROUND_ESTIMATE_PERCENTILE` percentile of all nearby heights.
    radius : float
        Horizontal search radius, metres; doubled up to four times while nothing lies within it.

    Returns
    -------
    The height (m, world z), or ``None`` when no point lies within ``16 * radius``.
    """
    p = np.asarray(points_world, np.float64).reshape(-1, 3)
    d2 = np.sum((p[:, :2] - np.asarray(vehicle_xy, np.float64)) ** 2, axis=1)
    for _ in range(5):
        near = d2 <= radius ** 2
        if ground is not None and np.any(near & ground):
            return float(np.median(p[near & ground, 2]))
        if np.any(near):
            return float(np.percentile(p[near, 2], GROUND_ESTIMATE_PERCENTILE))
        radius *= 2
    return None


def warp_to_frame(values: np.ndarray, spec: GridSpec, source: GridFrame, target: GridFrame,
                  fill: int) -> np.ndarray:
    """Resample a grid of one frame into another frame's grid by nearest voxel centre.

    Parameters
    ----------
    values : (X, Y, Z) array
        Per-voxel values (class ids, masks) in ``source``'s grid frame.
    spec : GridSpec
        The grid of both frames.
    source, target : GridFrame
        Where the two grids sit in the world.
    fill : int
        Value of target voxels whose centre falls outside the source grid.

    Returns
    -------
    (X, Y, Z) array of ``values.dtype``: each target voxel takes the value of the source voxel that
    contains its centre.
    """
    if values.shape != spec.shape:
        raise ValueError(f"warp_to_frame: values have shape {values.shape}, the grid {spec.shape}")
    centres = spec.all_centres().reshape(-1, 3)                                  # (X*Y*Z, 3) target grid frame
    in_source = transform_points(source.T_grid_world() @ target.T_world_grid(), centres)
    idx, inside = spec.index_of(in_source)
    out = np.full(len(centres), fill, dtype=values.dtype)
    i, j, k = idx[inside].T
    out[inside] = values[i, j, k]
    return out.reshape(spec.shape)
