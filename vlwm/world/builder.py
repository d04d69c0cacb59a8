"""Accumulate triangles with semantics and instances, then freeze them into a :class:`Scene`.

World generators (procedural city, CityGML import) add geometry piece by piece — raw triangle
meshes, extruded footprints, boxes, trees — and call :meth:`SceneBuilder.build` once.  All
coordinates are local ENU metres; every added solid is closed and wound outwards.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlwm.labels import DEFAULT_LABEL_MAP, CityClass, LabelMap
from vlwm.world.geo import GeoOrigin
from vlwm.world.roads import RoadGraph
from vlwm.world.scene import NO_INSTANCE, Scene
from vlwm.world.terrain import Terrain
from vlwm.world.triangulate import triangulate_2d


class SceneBuilder:
    """Collects triangle batches; :meth:`build` concatenates them once."""

    def __init__(self):
        self._vertices: list[np.ndarray] = []
        self._faces: list[np.ndarray] = []
        self._semantics: list[np.ndarray] = []
        self._instances: list[np.ndarray] = []
        self._num_vertices = 0
        self.instance_names: list[str] = []
        self.instance_semantics: list[int] = []

    @property
    def num_triangles(self) -> int:
        return sum(len(f) for f in self._faces)

    def new_instance(self, name: str, semantic: CityClass) -> int:
        """Register an object (a building, a tree) and return its instance id."""
        self.instance_names.append(str(name))
        self.instance_semantics.append(int(semantic))
        return len(self.instance_names) - 1

    def add_mesh(self, vertices: np.ndarray, faces: np.ndarray, semantic: CityClass | np.ndarray,
                 instance: int | np.ndarray = NO_INSTANCE) -> None:
        """Add triangles: ``vertices`` (v, 3) metres, ``faces`` (f, 3) int, one semantic/instance or one per face."""
        vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        if not len(faces):
            return
        if faces.min() < 0 or faces.max() >= len(vertices):
            raise ValueError("add_mesh: faces reference missing vertices")
        self._vertices.append(vertices)
        self._faces.append(faces + self._num_vertices)
        self._semantics.append(np.broadcast_to(np.asarray(semantic, np.uint8), (len(faces),)))
        self._instances.append(np.broadcast_to(np.asarray(instance, np.int32), (len(faces),)))
        self._num_vertices += len(vertices)

    def add_prism(self, footprint: np.ndarray, z0: float | np.ndarray, z1: float, semantic: CityClass,
                  instance: int = NO_INSTANCE, holes: Sequence[np.ndarray] = (), bottom: bool = True) -> None:
        """Extrude a 2-D footprint (k, 2) from ``z0`` (scalar or per vertex) up to ``z1``: walls, roof, floor."""
        add_prism(self, footprint, z0, z1, semantic, instance, holes, bottom)

    def add_box(self, center: Sequence[float], size: Sequence[float], yaw: float, semantic: CityClass,
                instance: int = NO_INSTANCE) -> None:
        """Axis box of ``size`` (l, w, h) m, bottom centre at ``center``, rotated by ``yaw`` rad about z."""
        v, f = box_mesh(center, size, yaw)
        self.add_mesh(v, f, semantic, instance)

    def build(self, terrain: Terrain, geo: GeoOrigin, roads: RoadGraph | None = None,
              label_map: LabelMap = DEFAULT_LABEL_MAP, meta: dict | None = None) -> Scene:
        if self._faces:
            vertices = np.concatenate(self._vertices)
            faces = np.concatenate(self._faces)
            semantics = np.concatenate(self._semantics)
            instances = np.concatenate(self._instances)
        else:
            vertices, faces = np.zeros((0, 3)), np.zeros((0, 3), np.int64)
            semantics, instances = np.zeros(0, np.uint8), np.zeros(0, np.int32)
        return Scene(
            vertices=vertices, faces=faces, semantics=semantics, instances=instances,
            instance_names=np.array(self.instance_names, dtype=str),
            instance_semantics=np.array(self.instance_semantics, dtype=np.uint8),
            terrain=terrain, geo=geo, roads=roads if roads is not None else RoadGraph(),
            label_map=label_map, meta=meta or {},
        )


# ------------------------------------------------------------------------------ primitives


def add_prism(builder: SceneBuilder, footprint, z0, z1, semantic, instance=NO_INSTANCE, holes=(), bottom=True):
    pts, cap = triangulate_2d(footprint, holes)  # counter-clockwise seen from above
    k = len(pts)
    z0 = np.broadcast_to(np.asarray(z0, np.float64), (k,)) if np.ndim(z0) == 0 else _ring_values(z0, footprint, holes, k)
    lo = np.column_stack([pts, z0])
    hi = np.column_stack([pts, np.full(k, float(z1))])
    vertices = np.concatenate([lo, hi])
    faces = [cap + k]                                   # roof, facing up
    if bottom:
        faces.append(cap[:, ::-1])                      # floor, facing down
    # Walls: for each ring edge (a -> b), quad (a, b, b', a') facing outwards for a CCW exterior.
    starts = np.cumsum([0] + [len(r) for r in _rings(footprint, holes)])
    signs = _ring_signs(pts, starts)
    for (s, e), sign in zip(zip(starts[:-1], starts[1:]), signs):
        a = np.arange(s, e)
        b = np.r_[a[1:], a[:1]]
        if sign < 0:  # ring runs clockwise: swap to keep walls facing away from the solid
            a, b = b, a
        faces.append(np.stack([a, b, b + k], 1))
        faces.append(np.stack([a, b + k, a + k], 1))
    builder.add_mesh(vertices, np.concatenate(faces), semantic, instance)


def _rings(footprint, holes):
    from vlwm.world.triangulate import clean_ring

    return [clean_ring(footprint)] + [clean_ring(h) for h in holes]


def _ring_values(z0, footprint, holes, k):
    z0 = np.asarray(z0, np.float64).reshape(-1)
    if len(z0) != k:
        raise ValueError(f"z0 has {len(z0)} values but the cleaned rings have {k} points")
    return z0


def _ring_signs(pts, starts):
    """+1 for a ring whose signed area makes its walls face outward when walked as given, -1 otherwise.

    The exterior should run counter-clockwise and holes clockwise; each ring is checked.
    """
    signs = []
    for i, (s, e) in enumerate(zip(starts[:-1], starts[1:])):
        r = pts[s:e]
        area = 0.5 * np.sum(r[:, 0] * np.roll(r[:, 1], -1) - np.roll(r[:, 0], -1) * r[:, 1])
        want_ccw = i == 0
        signs.append(1 if (area > 0) == want_ccw else -1)
    return signs


def box_mesh(center, size, yaw=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Closed box: vertices (8, 3), faces (12, 3) wound outwards; ``center`` is the bottom centre."""
    l, w, h = (float(s) for s in size)
    x = np.array([-l, l, l, -l]) / 2
    y = np.array([-w, -w, w, w]) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    xr, yr = c * x - s * y, s * x + c * y
    cx, cy, cz = (float(v) for v in center)
    bottom = np.column_stack([xr + cx, yr + cy, np.full(4, cz)])
    top = bottom + [0, 0, h]
    vertices = np.concatenate([bottom, top])
    faces = np.array([
        [0, 2, 1], [0, 3, 2],            # bottom (down)
        [4, 5, 6], [4, 6, 7],            # top (up)
        [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
        [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7],
    ])
    return vertices, faces


def cylinder_mesh(center, radius: float, height: float, segments: int = 8,
                  top_radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Closed cylinder (or frustum / cone with ``top_radius``) standing on ``center``, wound outwards."""
    top_radius = radius if top_radius is None else top_radius
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    cx, cy, cz = (float(v) for v in center)
    ring = np.column_stack([np.cos(a), np.sin(a)])
    bottom = np.column_stack([cx + radius * ring[:, 0], cy + radius * ring[:, 1], np.full(segments, cz)])
    top = np.column_stack([cx + top_radius * ring[:, 0], cy + top_radius * ring[:, 1], np.full(segments, cz + height)])
    centres = np.array([[cx, cy, cz], [cx, cy, cz + height]])
    vertices = np.concatenate([bottom, top, centres])
    i = np.arange(segments)
    j = (i + 1) % segments
    cb, ct = 2 * segments, 2 * segments + 1
    faces = np.concatenate([
        np.stack([i, j, j + segments], 1), np.stack([i, j + segments, i + segments], 1),   # side
        np.stack([np.full(segments, cb), j, i], 1),                                       # bottom
        np.stack([np.full(segments, ct), i + segments, j + segments], 1),                 # top
    ])
    return vertices, faces


def ellipsoid_mesh(center, radii, rings: int = 4, segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Closed UV ellipsoid centred at ``center`` with semi-axes ``radii`` (3,), wound outwards."""
    cx, cy, cz = (float(v) for v in center)
    rx, ry, rz = (float(v) for v in radii)
    phi = np.linspace(0, np.pi, rings + 1)[1:-1]               # latitude rings, poles excluded
    th = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    p, t = np.meshgrid(phi, th, indexing="ij")
    body = np.column_stack([(rx * np.sin(p) * np.cos(t)).ravel(), (ry * np.sin(p) * np.sin(t)).ravel(),
                            (rz * np.cos(p)).ravel()])
    vertices = np.concatenate([body, [[0, 0, rz], [0, 0, -rz]]]) + [cx, cy, cz]
    top, bot = len(body), len(body) + 1
    faces = []
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces.append(np.stack([np.full(segments, top), j, jn], 1))
    for r in range(rings - 2):
        a, b = r * segments + j, r * segments + jn
        faces.append(np.stack([a, a + segments, b + segments], 1))
        faces.append(np.stack([a, b + segments, b], 1))
    last = (rings - 2) * segments
    faces.append(np.stack([np.full(segments, bot), last + jn, last + j], 1))
    return vertices, np.concatenate(faces)
