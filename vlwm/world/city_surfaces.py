"""The surfaces of a procedural city as they are laid out, and their emission as triangles.

:class:`CitySurfaces` is what the street layout (:mod:`vlwm.world.city_layout`) and the block
filler (:mod:`vlwm.world.city_buildings`) draw on: flat rectangles at ground height, sidewalk
slabs and trees are queued and emitted in batches at the end (two triangles a rectangle, a
scaled unit box a slab, a scaled cylinder + ellipsoid a tree); buildings and ground with
footprints cut out go to the :class:`SceneBuilder` as they come.

Frame: local ENU (x east, y north, z up), metres; rectangles are ``(x0, y0, x1, y1)`` with
``x0 <= x1`` and ``y0 <= y1``.
"""

from __future__ import annotations

import numpy as np

from vlwm.labels import CityClass
from vlwm.world.builder import SceneBuilder, box_mesh, cylinder_mesh, ellipsoid_mesh
from vlwm.world.geo import GeoOrigin
from vlwm.world.roads import RoadGraph
from vlwm.world.scene import Scene
from vlwm.world.terrain import Terrain
from vlwm.world.triangulate import triangulate_2d

GROUND_Z = 0.0  #: height (m) of the flat ground, carriageways and lot surfaces
TRUNK_SEGMENTS, CROWN_RINGS, CROWN_SEGMENTS = 6, 4, 8  #: tessellation of tree trunks and crowns


def corners(rect) -> np.ndarray:
    """(4, 2) counter-clockwise corners of ``rect`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = rect
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def inset(rect, d: float):
    """``rect`` shrunk by ``d`` m on every side (grown for negative ``d``)."""
    x0, y0, x1, y1 = rect
    return (x0 + d, y0 + d, x1 - d, y1 - d)


class CitySurfaces:
    """Accumulates one city: flat surfaces, kerbs and trees (emitted in batches by :meth:`build`),
    buildings and cut-out ground (emitted as they come).

    ``kerb_height`` (m) is the height of sidewalk slabs above the carriageway; 0 makes them flush,
    plain SIDEWALK rectangles.
    """

    def __init__(self, kerb_height: float):
        self.kerb_height = kerb_height
        self.builder = SceneBuilder()
        self.flat: list[tuple] = []        # (x0, y0, x1, y1, CityClass) at ground height
        self.kerbs: list[tuple] = []       # (x0, y0, x1, y1) sidewalk slabs
        self.trees: list[np.ndarray] = []  # (n, 7): x, y, z, trunk r, trunk h, crown r, crown rz
        self.num_buildings = 0

    def add_flat(self, rect, cls: CityClass) -> None:
        """Queue a flat rectangle of ``cls`` at ``GROUND_Z``."""
        self.flat.append((*rect, cls))

    def add_kerb(self, rect) -> None:
        """Queue a sidewalk slab over ``rect``, ``kerb_height`` tall."""
        self.kerbs.append(tuple(rect))

    def add_trees(self, trees: np.ndarray) -> None:
        """Queue trees: (n, 7) float64 x, y, z (foot, m), trunk radius, trunk height, crown
        horizontal and vertical semi-axes (m)."""
        self.trees.append(trees)

    def building(self, tiers: list[tuple[np.ndarray, float, float]]) -> None:
        """One building instance of stacked closed prisms: (footprint (k, 2), z0, z1) per tier."""
        inst = self.builder.new_instance(f"bldg_{self.num_buildings:06d}", CityClass.BUILDING)
        self.num_buildings += 1
        for fp, z0, z1 in tiers:
            self.builder.add_prism(fp, z0, z1, CityClass.BUILDING, inst)

    def ground(self, rect, cls: CityClass, holes: list[np.ndarray]) -> None:
        """Flat ground of ``cls`` over ``rect`` at ``GROUND_Z`` with the polygons ``holes`` (k, 2) cut out."""
        if not holes:
            self.add_flat(rect, cls)
            return
        pts, tri = triangulate_2d(corners(rect), holes)
        self.builder.add_mesh(np.column_stack([pts, np.full(len(pts), GROUND_Z)]), tri, cls)

    def build(self, terrain: Terrain, geo: GeoOrigin, roads: RoadGraph, meta: dict) -> Scene:
        """Emit the batched surfaces, kerbs and trees and freeze the scene."""
        b = self.builder
        if self.kerb_height == 0:                         # flush sidewalks: plain surfaces
            self.flat += [(*k, CityClass.SIDEWALK) for k in self.kerbs]
            self.kerbs = []
        # Flat rectangles at ground height: two up-facing triangles each.
        flat = np.array([f[:4] for f in self.flat], dtype=np.float64)
        cls = np.array([f[4] for f in self.flat], dtype=np.uint8)
        x0, y0, x1, y1 = flat.T
        quad = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)
        verts = np.concatenate([quad, np.full((len(flat), 4, 1), GROUND_Z)], axis=2).reshape(-1, 3)
        base = 4 * np.arange(len(flat))[:, None, None]
        b.add_mesh(verts, (np.array([[0, 1, 2], [0, 2, 3]]) + base).reshape(-1, 3), np.repeat(cls, 2))
        # Sidewalk slabs: unit box scaled to each rectangle, kerb_height tall.
        if self.kerbs:
            k = np.array(self.kerbs, dtype=np.float64)
            bv, bf = box_mesh((0.5, 0.5, 0.0), (1.0, 1.0, 1.0))
            size = np.column_stack([k[:, 2] - k[:, 0], k[:, 3] - k[:, 1], np.full(len(k), self.kerb_height)])
            origin = np.column_stack([k[:, 0], k[:, 1], np.full(len(k), GROUND_Z)])
            v = bv[None] * size[:, None] + origin[:, None]
            f = bf[None] + 8 * np.arange(len(k))[:, None, None]
            b.add_mesh(v.reshape(-1, 3), f.reshape(-1, 3), CityClass.SIDEWALK)
        self._emit_trees()
        return b.build(terrain=terrain, geo=geo, roads=roads, meta=meta)

    def _emit_trees(self) -> None:
        """All queued trees as one batch: one VEGETATION instance each (trunk + crown)."""
        if not self.trees:
            return
        t = np.concatenate(self.trees)
        n = len(t)
        tv, tf = cylinder_mesh((0.0, 0.0, 0.0), 1.0, 1.0, segments=TRUNK_SEGMENTS)
        cv, cf = ellipsoid_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), rings=CROWN_RINGS, segments=CROWN_SEGMENTS)
        x, y, z, tr, th, cr, crz = t.T
        trunk = tv[None] * np.stack([tr, tr, th], 1)[:, None] + np.stack([x, y, z], 1)[:, None]
        crown_c = np.stack([x, y, z + th + 0.7 * crz], 1)   # crown bottom 0.3 rz below the trunk top
        crown = cv[None] * np.stack([cr, cr, crz], 1)[:, None] + crown_c[:, None]
        nv = len(tv) + len(cv)
        verts = np.concatenate([trunk, crown], axis=1).reshape(-1, 3)
        faces = (np.concatenate([tf, cf + len(tv)])[None] + nv * np.arange(n)[:, None, None]).reshape(-1, 3)
        first = len(self.builder.instance_names)
        for i in range(n):
            self.builder.new_instance(f"tree_{i:06d}", CityClass.VEGETATION)
        inst = np.repeat(np.arange(first, first + n, dtype=np.int32), len(tf) + len(cf))
        self.builder.add_mesh(verts, faces, CityClass.VEGETATION, inst)
