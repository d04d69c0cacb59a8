"""``--source scene``: exact voxelisation of a scene and its moving actors in one frame's grid.

:class:`SceneVoxelizer` prepares a scene once — per-triangle labels, which triangles bound solids,
and a uniform grid of ``BIN_SIZE_M`` bins over the ground plane listing the triangles whose
bounding boxes reach each bin — so that a frame touches only the triangles near its grid (the
default 1 km city has ~160k triangles; an 80 m aerial grid meets a few thousand).  Per frame:

1. triangles whose bounding box meets the grid's (for solids: whose footprint meets the grid's,
   at any height — a tower's roof above the grid still closes its column) are moved into index
   space (grid frame, then ``(p - lower) / voxel_size``);
2. their surfaces are voxelised (:func:`vlwm.gt.voxelize.voxelize_surfaces`) and, with
   ``solid_interiors``, instances of ``solid_classes`` are filled per instance
   (:func:`vlwm.gt.voxelize.fill_solids`);
3. actors (:class:`ActorBoxes`: cars, pedestrians, drones at the frame's time) are voxelised as
   solid oriented boxes — their surfaces plus the voxel centres inside — always filled, whatever
   ``solid_interiors`` says, so that thin objects are never lost.

Labels are the scene's occupancy labels (``scene.label_map``); voxels where several meet take the
highest priority (:mod:`vlwm.gt.priority`).  Given an ``instance_grid``, voxels of dynamic labels
also get the instance id (+1, :mod:`vlwm.gt.instances`) of the triangle, solid or actor that gave
them their label: the scene's per-triangle instances, the actors' ``instance``.  Frames: scene and
actors in the local ENU world frame, the result in the grid frame of :class:`vlwm.gt.ego_frame.GridFrame`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from vlwm.gt.ego_frame import GridFrame, index_transform
from vlwm.gt.grid import GridSpec
from vlwm.gt.instances import dynamic_labels, voxel_instance_ids
from vlwm.gt.voxelize import fill_solids, voxelize_surfaces
from vlwm.io.frames import transform_points
from vlwm.labels import CityClass
from vlwm.sim.traffic import Traffic
from vlwm.world.builder import box_mesh
from vlwm.world.scene import Scene

BIN_SIZE_M = 32.0  #: side (m) of the ground-plane bins of the per-scene triangle index
CULL_MARGIN_M = 1e-3  #: triangles this close (m) to the grid's bounding box are kept
#: City classes whose instances are closed solids filled when ``solid_interiors`` is on.
DEFAULT_SOLID_CLASSES: tuple[CityClass, ...] = (CityClass.BUILDING, CityClass.BRIDGE, CityClass.VEGETATION)
_BOX_FACES = box_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))[1]  # (12, 3) outward-wound faces of box corners 0..7


class ActorBoxes(NamedTuple):
    """Moving objects at one time, as oriented boxes (one row per actor).

    position : (A, 3) float64, bottom centre of each box, local ENU metres.
    yaw : (A,) float64, heading of the box's x (length) axis, rad counter-clockwise from east.
    size : (A, 3) float64, length, width, height, metres.
    semantic : (A,) uint8 :class:`CityClass` of each actor.
    instance : (A,) int32 global instance id of each actor.
    """

    position: np.ndarray
    yaw: np.ndarray
    size: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray

    @classmethod
    def from_traffic(cls, traffic: Traffic, t: float) -> "ActorBoxes":
        """The boxes of every actor of ``traffic`` at time ``t`` (s)."""
        st = traffic.states(t)
        return cls(st.position, st.yaw, np.array([a.size for a in traffic.actors], np.float64).reshape(-1, 3),
                   np.array([a.semantic for a in traffic.actors], np.uint8),
                   np.array([a.instance for a in traffic.actors], np.int32))

    @classmethod
    def empty(cls) -> "ActorBoxes":
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros(0, np.uint8), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.yaw)

    def corners(self) -> np.ndarray:
        """(A, 8, 3) float64 box corners, local ENU: bottom four counter-clockwise from rear-right, then
        the top four (the order of :func:`vlwm.world.builder.box_mesh`)."""
        size = np.asarray(self.size, np.float64)
        x = np.array([-1, 1, 1, -1, -1, 1, 1, -1]) * size[:, :1] / 2
        y = np.array([-1, -1, 1, 1, -1, -1, 1, 1]) * size[:, 1:2] / 2
        z = np.array([0, 0, 0, 0, 1, 1, 1, 1]) * size[:, 2:3]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        return np.stack([c * x - s * y, s * x + c * y, z], -1) + np.asarray(self.position, np.float64)[:, None, :]

    def triangles(self) -> np.ndarray:
        """(A, 12, 3, 3) float64 box surfaces, local ENU, wound outwards."""
        return self.corners()[:, _BOX_FACES]


class SceneVoxelizer:
    """A scene prepared for per-frame voxelisation.

    Parameters
    ----------
    scene : Scene
        Static geometry, local ENU metres; labels through ``scene.label_map``.
    solid_interiors : bool
        Fill the interiors of instances whose city class is in ``solid_classes`` (else hollow shells).
    solid_classes : sequence of CityClass
        Which instances are closed solids.
    bin_size : float
        Side (m) of the ground-plane bins of the triangle index.
    """

    def __init__(self, scene: Scene, solid_interiors: bool = True,
                 solid_classes: Sequence[CityClass] = DEFAULT_SOLID_CLASSES, bin_size: float = BIN_SIZE_M):
        if not bin_size > 0:
            raise ValueError(f"SceneVoxelizer: bin_size must be positive, got {bin_size}")
        self.scene = scene
        self.triangles = scene.vertices[scene.faces]                                      # (F, 3, 3) float32
        self.lo, self.hi = self.triangles.min(1), self.triangles.max(1)                   # (F, 3) float32
        self.labels = scene.classes                                                       # (F,) uint8
        inst = scene.instances
        solid_inst = np.isin(scene.instance_semantics, np.asarray(solid_classes, np.uint8))
        self.solid = (inst >= 0) & solid_inst[np.maximum(inst, 0)] if solid_interiors else np.zeros(len(inst), bool)
        self.instance_labels = scene.label_map(scene.instance_semantics)                  # (I,) uint8
        self.dynamic = dynamic_labels(scene.label_map.names)                              # (L,) bool
        self.triangle_instances = voxel_instance_ids(inst, self.labels, self.dynamic)     # (F,) int32, 0 = none
        self._build_bins(float(bin_size))

    # ------------------------------------------------------------------ per-scene index

    def _build_bins(self, b: float) -> None:
        """CSR lists of the triangles whose xy bounding box reaches each ``b`` x ``b`` bin."""
        f = len(self.triangles)
        self.bin_size = b
        self.bin_origin = self.lo[:, :2].min(0).astype(np.float64) if f else np.zeros(2)
        top = self.hi[:, :2].max(0) if f else np.zeros(2)
        self.bin_shape = tuple(np.maximum(np.floor((top - self.bin_origin) / b).astype(int) + 1, 1))
        c0 = self._bin_of(self.lo[:, :2])
        c1 = self._bin_of(self.hi[:, :2])
        span = c1 - c0 + 1                                                                 # (F, 2) bins per axis
        count = span[:, 0] * span[:, 1]
        tri = np.repeat(np.arange(f), count)
        local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        cx = c0[tri, 0] + local // span[tri, 1]
        cy = c0[tri, 1] + local % span[tri, 1]
        cell = cx * self.bin_shape[1] + cy
        order = np.argsort(cell, kind="stable")
        self._bin_triangles = tri[order].astype(np.int64)
        self._bin_starts = np.searchsorted(cell[order], np.arange(self.bin_shape[0] * self.bin_shape[1] + 1))

    def _bin_of(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) int bin indices of world points (n, 2), clamped to the index."""
        c = np.floor((np.asarray(xy, np.float64) - self.bin_origin) / self.bin_size).astype(np.int64)
        return np.clip(c, 0, np.array(self.bin_shape) - 1)

    def near(self, xy_lo: np.ndarray, xy_hi: np.ndarray) -> np.ndarray:
        """(m,) int64 sorted ids of the triangles listed in the bins that meet the box ``xy_lo``..``xy_hi`` (m)."""
        (i0, j0), (i1, j1) = self._bin_of(xy_lo[None])[0], self._bin_of(xy_hi[None])[0]
        rows = [self._bin_triangles[self._bin_starts[i * self.bin_shape[1] + j0]:
                                    self._bin_starts[i * self.bin_shape[1] + j1 + 1]] for i in range(i0, i1 + 1)]
        return np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)

    # ------------------------------------------------------------------ per frame

    def semantics(self, frame: GridFrame, spec: GridSpec, ranks: np.ndarray, actors: ActorBoxes | None = None,
                  free: int | None = None, instance_grid: np.ndarray | None = None) -> np.ndarray:
        """The class grid of one frame (and, optionally, its instance grid).

        Parameters
        ----------
        frame : GridFrame
            Where the grid sits in the world.
        spec : GridSpec
            The grid.
        ranks : (L,) uint8
            Priority rank of each label (:func:`vlwm.gt.priority.priority_ranks`).
        actors : ActorBoxes, optional
            Moving objects at the frame's time.
        free : int, optional
            The free label; the scene's label map's by default.
        instance_grid : (X, Y, Z) int32, optional
            Filled in place: simulator instance id + 1 of the object that gave each dynamic voxel its
            label, 0 elsewhere (:mod:`vlwm.gt.instances`).

        Returns
        -------
        (X, Y, Z) uint8 label ids, grid frame.
        """
        free = self.scene.label_map.free if free is None else free
        sem = np.full(spec.shape, free, np.uint8)
        if instance_grid is not None:
            instance_grid[...] = 0
        corners = spec.from_index_space(np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T
                                        * np.array(spec.shape))
        world = frame.to_world(corners)                                                   # (8, 3) grid corners
        w_lo, w_hi = world.min(0) - CULL_MARGIN_M, world.max(0) + CULL_MARGIN_M
        ids = self.near(w_lo[:2], w_hi[:2])
        lo, hi = self.lo[ids], self.hi[ids]
        in_xy = np.all((lo[:, :2] <= w_hi[:2]) & (hi[:, :2] >= w_lo[:2]), axis=1)
        surface = ids[in_xy & (lo[:, 2] <= w_hi[2]) & (hi[:, 2] >= w_lo[2])]
        solid = ids[in_xy & self.solid[ids]]
        to_index = index_transform(spec, frame)
        track = instance_grid is not None
        voxelize_surfaces(sem, transform_points(to_index, self.triangles[surface]), self.labels[surface], ranks,
                          instance_grid=instance_grid, instance_ids=self.triangle_instances[surface] if track else None)
        if len(solid):
            inst, group = np.unique(self.scene.instances[solid], return_inverse=True)
            labels = self.instance_labels[inst]
            fill_solids(sem, transform_points(to_index, self.triangles[solid]), group, labels, ranks,
                        instance_grid=instance_grid,
                        group_instances=voxel_instance_ids(inst, labels, self.dynamic) if track else None)
        if actors is not None and len(actors):
            self._voxelize_actors(sem, actors, frame, spec, to_index, ranks, instance_grid)
        return sem

    def _voxelize_actors(self, sem, actors: ActorBoxes, frame: GridFrame, spec: GridSpec, to_index, ranks,
                         instance_grid: np.ndarray | None = None) -> None:
        """Solid oriented boxes: surfaces plus interior, each actor its own solid."""
        reach = np.linalg.norm(np.asarray(actors.size)[:, :2], axis=1) / 2
        centre = frame.to_grid(np.asarray(actors.position, np.float64))                   # (A, 3) bottom centres
        lower, upper = spec.lower, spec.upper
        near = np.all(centre[:, :2] + reach[:, None] >= lower[:2], axis=1) & \
            np.all(centre[:, :2] - reach[:, None] <= upper[:2], axis=1) & \
            (centre[:, 2] <= upper[2]) & (centre[:, 2] + np.asarray(actors.size)[:, 2] >= lower[2])
        if not near.any():
            return
        boxes = ActorBoxes(*(np.asarray(a)[near] for a in actors))
        tri = transform_points(to_index, boxes.triangles().reshape(-1, 3, 3))                       # (A*12, 3, 3)
        labels = self.scene.label_map(boxes.semantic)                                     # (A,) uint8
        ids = voxel_instance_ids(boxes.instance, labels, self.dynamic) if instance_grid is not None else None
        voxelize_surfaces(sem, tri, np.repeat(labels, len(_BOX_FACES)), ranks, instance_grid=instance_grid,
                          instance_ids=None if ids is None else np.repeat(ids, len(_BOX_FACES)))
        fill_solids(sem, tri, np.repeat(np.arange(len(boxes)), len(_BOX_FACES)), labels, ranks,
                    instance_grid=instance_grid, group_instances=ids)

