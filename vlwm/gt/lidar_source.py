"""``--source lidar``: occupancy from recorded lidar alone, by Occ3D-style multi-sweep aggregation.

For recordings whose scene is unknown (imported from Gazebo or ROS), the class grid of frame ``i``
is built from the sweeps ``i - window .. i + window``:

* **Static points** (every point not on a moving object) are taken to the world frame with their
  sweep's pose and into frame ``i``'s grid: the world does not move, so sweeps from several places
  fill each other's gaps.
* **Dynamic points** — labels in :data:`vlwm.labels.DYNAMIC_OCC_CLASSES`, or instance ids at or
  above ``first_dynamic_instance`` (other drones are ``others`` but move) — are grouped by instance
  id and moved with their object: ``p_i = T_obj(i) @ inv(T_obj(s)) @ p_s``, where ``T_obj(s)`` is the
  object's pose (world <- object) at sweep ``s``.  Object poses come from recorded boxes when the
  recording has them (:func:`object_poses_from_boxes`), else are estimated from the points
  (:func:`estimate_object_poses`: the footprint's principal axis, its sign chosen nearest frame
  ``i``'s, and the middle of the points' extent along it; translation only for round footprints
  such as pedestrians).  Estimated poses follow what the sensor saw of the object, so a partly
  seen object is smeared a little.  Objects absent from frame ``i`` (no pose there) are dropped; dynamic points without an instance
  id count only in frame ``i``'s own sweep.
* Points become voxels (:func:`vlwm.gt.voxelize.splat_points`); where classes meet, the priority
  of :mod:`vlwm.gt.priority` decides, as for the scene source.  Points without a label column, or
  with a label outside the label space (or the free label), are ``others``.
* Given an ``instance_grid``, a voxel of a dynamic label takes the instance id (+1,
  :mod:`vlwm.gt.instances`) of the point that gave it its label — the ``instance`` column of the
  hit, the simulator's actor id, the same in every sweep — so moved points keep their object's id.

Frames: points in each sweep's lidar frame; poses body -> world (local ENU, metres); the result in
frame ``i``'s grid frame.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from vlwm.gt.ego_frame import GridFrame, index_transform, rotation_z
from vlwm.gt.grid import GridSpec
from vlwm.gt.instances import voxel_instance_ids
from vlwm.gt.voxelize import splat_points
from vlwm.io.frames import transform_points
from vlwm.io.frames import Pose, invert_transform, make_transform
from vlwm.labels import DYNAMIC_OCC_CLASSES
from vlwm.io.recording import LIDAR_COLUMNS

MIN_OBJECT_POINTS = 3          #: an instance needs this many points in a sweep to get an estimated pose
ROUND_FOOTPRINT_RATIO = 1.5    #: principal-axis variance ratio below which a footprint has no heading


class LidarSweep(NamedTuple):
    """One recorded sweep.

    pose : Pose, vehicle body in the world at the sweep's time.
    points : (N, C) float32, one row per return, lidar frame, columns named by ``columns``
        (x, y, z in metres first; ``label`` and ``instance`` used when present).
    T_body_lidar : (4, 4) float64, maps lidar-frame points into the body frame.
    columns : tuple of str, the column names (:data:`vlwm.io.recording.LIDAR_COLUMNS` for our recordings).
    """

    pose: Pose
    points: np.ndarray
    T_body_lidar: np.ndarray
    columns: tuple[str, ...] = LIDAR_COLUMNS

    def T_world_lidar(self) -> np.ndarray:
        """(4, 4) float64: lidar frame -> world."""
        return self.pose.matrix() @ np.asarray(self.T_body_lidar, np.float64)

    def origin_world(self) -> np.ndarray:
        """(3,) float64 sensor origin, world frame, metres."""
        return self.T_world_lidar()[:3, 3]

    def world_points(self) -> np.ndarray:
        """(N, 3) float64 returns, world frame, metres."""
        return transform_points(self.T_world_lidar(), self.points[:, :3])

    def labels(self, others: int, free: int) -> np.ndarray:
        """(N,) uint8 label per point: the ``label`` column, with ``others`` where it is missing, not a
        label id below ``free``, or absent altogether."""
        if "label" not in self.columns:
            return np.full(len(self.points), others, np.uint8)
        raw = self.points[:, self.columns.index("label")].astype(np.float64)
        ok = np.isfinite(raw) & (raw >= 0) & (raw < free) & (raw == np.round(raw))
        return np.where(ok, raw, others).astype(np.uint8)

    def instances(self) -> np.ndarray:
        """(N,) int64 instance id per point, -1 where none (or no ``instance`` column)."""
        if "instance" not in self.columns:
            return np.full(len(self.points), -1, np.int64)
        raw = self.points[:, self.columns.index("instance")]
        return np.where(np.isfinite(raw), raw, -1).astype(np.int64)


#: Per sweep, ``{instance id: (4, 4) T_world_object}``.
ObjectPoses = Sequence[dict[int, np.ndarray]]


def dynamic_mask(labels: np.ndarray, instances: np.ndarray, first_dynamic_instance: int | None) -> np.ndarray:
    """(N,) bool: points on moving objects (dynamic label, or an actor's instance id)."""
    dyn = np.isin(labels, DYNAMIC_OCC_CLASSES)
    if first_dynamic_instance is not None:
        dyn |= instances >= first_dynamic_instance
    return dyn


def object_poses_from_boxes(positions: Sequence[dict[int, tuple[np.ndarray, float]]]) -> list[dict[int, np.ndarray]]:
    """Object poses from recorded boxes: per sweep ``{instance: (bottom centre (3,), yaw)}`` -> 4x4 poses."""
    return [{i: _pose_matrix(np.asarray(p, np.float64), float(yaw)) for i, (p, yaw) in d.items()} for d in positions]


def estimate_object_poses(sweeps: Sequence[LidarSweep], reference: int, others: int, free: int,
                          first_dynamic_instance: int | None = None) -> list[dict[int, np.ndarray]]:
    """Object poses estimated from each sweep's points of each dynamic instance.

    Heading: the principal axis of the footprint (x, y) with the sign nearest to the heading
    estimated in sweep ``reference``; a footprint whose principal variances differ by less than
    :data:`ROUND_FOOTPRINT_RATIO` keeps the reference heading, and an object round in the reference
    sweep keeps heading 0 throughout (translation only).  Position: the
    middle of the points' extent along those axes (in x, y) and their lowest z.

    Returns per sweep ``{instance id: (4, 4) T_world_object}``.
    """
    points, axes = [], []
    for sw in sweeps:
        inst = sw.instances()
        dyn = dynamic_mask(sw.labels(others, free), inst, first_dynamic_instance) & (inst >= 0)
        pts, inst = transform_points(sw.T_world_lidar(), sw.points[dyn, :3]), inst[dyn]   # world, dynamic only
        p_of, a_of = {}, {}
        for i in np.unique(inst):
            p = pts[inst == i]
            if len(p) < MIN_OBJECT_POINTS:
                continue
            w, v = np.linalg.eigh(np.cov(p[:, :2].T))
            p_of[int(i)] = p
            a_of[int(i)] = np.arctan2(v[1, 1], v[0, 1]) if w[1] > ROUND_FOOTPRINT_RATIO * max(w[0], 1e-12) else None
        points.append(p_of)
        axes.append(a_of)
    ref_yaw = axes[reference]                      # None: round in the reference sweep, translation only
    out = []
    for p_of, a_of in zip(points, axes):
        poses = {}
        for i, p in p_of.items():
            ref = ref_yaw.get(i)
            yaw = 0.0 if ref is None else (ref if a_of[i] is None else a_of[i])
            if ref is not None and np.cos(yaw - ref) < 0:
                yaw += np.pi
            # centre of the points' extent along the object's axes: unlike the centroid it does not
            # follow the point density, which is highest on the side nearest the sensor
            r = rotation_z(yaw)[:2, :2]
            local = p[:, :2] @ r
            mid = r @ ((local.min(0) + local.max(0)) / 2)
            poses[i] = _pose_matrix(np.array([mid[0], mid[1], p[:, 2].min()]), yaw)
        out.append(poses)
    return out


def aggregate_sweeps(sweeps: Sequence[LidarSweep], current: int, frame: GridFrame, spec: GridSpec,
                     ranks: np.ndarray, free: int, others: int, object_poses: ObjectPoses | None = None,
                     first_dynamic_instance: int | None = None, instance_grid: np.ndarray | None = None,
                     dynamic_labels: np.ndarray | None = None) -> np.ndarray:
    """The class grid of sweep ``current`` from all ``sweeps`` (its window).

    Parameters
    ----------
    sweeps : sequence of LidarSweep
        The window, in time order.
    current : int
        Index in ``sweeps`` of the frame whose grid is built.
    frame : GridFrame
        That frame's grid in the world.
    spec : GridSpec
    ranks : (L,) uint8
        Priority rank per label.
    free, others : int
        The free label and the label of unlabelled points.
    object_poses : per sweep ``{instance: (4, 4) T_world_object}``, optional
        Known object poses; estimated from the points (:func:`estimate_object_poses`) when omitted.
    first_dynamic_instance : int, optional
        Instance ids from this one up are moving actors, whatever their label.
    instance_grid : (X, Y, Z) int32, optional
        Filled in place: the point's instance id + 1 where a point of a dynamic label gave the voxel
        its label, 0 elsewhere (:mod:`vlwm.gt.instances`).
    dynamic_labels : (L,) bool, optional
        Which labels carry instance ids (:func:`vlwm.gt.instances.dynamic_labels`); by default the ids
        :data:`vlwm.labels.DYNAMIC_OCC_CLASSES`.

    Returns
    -------
    (X, Y, Z) uint8 label ids, grid frame of ``frame``.
    """
    if not 0 <= current < len(sweeps):
        raise ValueError(f"aggregate_sweeps: current {current} outside the {len(sweeps)} sweeps")
    if object_poses is None:
        object_poses = estimate_object_poses(sweeps, current, others, free, first_dynamic_instance)
    if len(object_poses) != len(sweeps):
        raise ValueError(f"aggregate_sweeps: {len(object_poses)} object pose sets for {len(sweeps)} sweeps")
    T_index_world = index_transform(spec, frame)
    sem = np.full(spec.shape, free, np.uint8)
    track = instance_grid is not None
    if track:
        instance_grid[...] = 0
        if dynamic_labels is None:
            dynamic_labels = np.isin(np.arange(free + 1), DYNAMIC_OCC_CLASSES)
    here = object_poses[current]
    for s, sw in enumerate(sweeps):
        labels = sw.labels(others, free)
        inst = sw.instances()
        dyn = dynamic_mask(labels, inst, first_dynamic_instance)
        ids = voxel_instance_ids(inst, labels, dynamic_labels) if track else None        # (N,) int32
        T = T_index_world @ sw.T_world_lidar()
        if s == current:                                     # the frame's own sweep: every point as it is
            splat_points(sem, sw.points, labels, ranks, T, instance_grid=instance_grid, instance_ids=ids)
            continue
        splat_points(sem, sw.points, np.where(dyn, np.uint8(free), labels), ranks, T,       # static points only
                     instance_grid=instance_grid, instance_ids=ids)
        for i in np.unique(inst[dyn & (inst >= 0)]):
            i = int(i)
            if i not in here or i not in object_poses[s]:
                continue
            sel = dyn & (inst == i)
            move = here[i] @ invert_transform(object_poses[s][i])               # world at s -> world now
            splat_points(sem, sw.points[sel], labels[sel], ranks, T_index_world @ move @ sw.T_world_lidar(),
                         instance_grid=instance_grid, instance_ids=None if ids is None else ids[sel])
    return sem


def _pose_matrix(position: np.ndarray, yaw: float) -> np.ndarray:
    """(4, 4) T_world_object of an object standing at ``position`` (3,) heading ``yaw`` (rad)."""
    return make_transform(rotation_z(yaw), position)
