"""Polygon triangulation (with holes) for planar polygons in 2-D and 3-D.

3-D rings (CityGML surfaces) are projected onto their own plane — the Newell normal of the
exterior ring — and ear-cut there (mapbox_earcut), so walls, sloped roofs and floors all
triangulate the same way.  Output triangles wind like the exterior ring: counter-clockwise seen
from the side the Newell normal points to.

:func:`triangulate_polygons` does many classed polygons at once into one :class:`SurfaceMesh`:
convex hole-free ones (most LOD1 walls, rectangular roofs, every TIN triangle) are fanned in bulk
with numpy, the rest ear-cut one by one by :func:`triangulate_3d`, the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import mapbox_earcut
import numpy as np

#: Hole-free polygons of up to this many vertices are checked for convexity and fan-triangulated in bulk.
MAX_FAN_VERTICES = 32
#: Relative tolerance of that convexity test (sine of the turn at a vertex; total turning vs 2π).
CONVEX_TOLERANCE = 1e-9
#: Fan triangles at most this large (m²) — collinear vertices — are dropped.
MIN_FAN_TRIANGLE_AREA = 1e-12


class DegeneratePolygon(ValueError):
    """A ring with fewer than three distinct points, zero area, or non-finite coordinates."""


def clean_ring(ring: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Drop the closing vertex and consecutive duplicates of a ring (k, d) -> (m, d)."""
    ring = np.asarray(ring, dtype=np.float64)
    if ring.ndim != 2 or len(ring) == 0:
        raise DegeneratePolygon("empty ring")
    if not np.all(np.isfinite(ring)):
        raise DegeneratePolygon("ring has non-finite coordinates")
    keep = np.ones(len(ring), bool)
    keep[1:] = np.linalg.norm(np.diff(ring, axis=0), axis=1) > tol
    ring = ring[keep]
    if len(ring) > 1 and np.linalg.norm(ring[0] - ring[-1]) <= tol:
        ring = ring[:-1]
    if len(ring) < 3:
        raise DegeneratePolygon(f"ring has {len(ring)} distinct points (needs 3)")
    return ring


def newell_normal(ring: np.ndarray) -> np.ndarray:
    """Area-weighted normal (3,) of a 3-D ring (m, 3); its length is twice the polygon area."""
    nxt = np.roll(ring, -1, axis=0)
    return np.array([
        np.sum((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])),
        np.sum((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])),
        np.sum((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1])),
    ])


def triangulate_2d(exterior: np.ndarray, holes: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Ear-cut a 2-D polygon.

    Parameters
    ----------
    exterior : (k, 2) float
        Outer ring (open or closed).
    holes : sequence of (k_i, 2) float
        Inner rings.

    Returns
    -------
    points : (m, 2) float64
        The cleaned ring points, exterior first then holes.
    faces : (t, 3) int32
        Triangles into ``points``, counter-clockwise.
    """
    rings = [clean_ring(exterior)] + [clean_ring(h) for h in holes]
    return _earcut(rings, [r[:, :2] for r in rings], ccw_normal_z=1.0)


def triangulate_3d(exterior: np.ndarray, holes: Sequence[np.ndarray] = (),
                   min_area: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Ear-cut a planar 3-D polygon on its own plane.

    Returns ``points`` (m, 3) float64 and ``faces`` (t, 3) int32 wound like ``exterior``.
    Raises :class:`DegeneratePolygon` for rings with < 3 points or area below ``min_area`` m².
    """
    outer = clean_ring(exterior)
    inner = []
    for h in holes:
        try:
            inner.append(clean_ring(h))
        except DegeneratePolygon:
            continue  # a degenerate hole removes nothing
    n = newell_normal(outer)
    area2 = np.linalg.norm(n)
    if not area2 / 2 > min_area:
        raise DegeneratePolygon(f"polygon area {area2 / 2:.3g} m² is below {min_area:g} m²")
    n = n / area2
    # In-plane basis (u, v) with u x v = n, so the 2-D winding matches the 3-D one.
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(a, n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    rings = [outer] + inner
    origin = outer[0]
    flat = [np.stack([(r - origin) @ u, (r - origin) @ v], axis=1) for r in rings]
    return _earcut(rings, flat, ccw_normal_z=1.0)


def _earcut(rings: list[np.ndarray], flat: list[np.ndarray], ccw_normal_z: float) -> tuple[np.ndarray, np.ndarray]:
    pts2 = np.concatenate(flat)
    ends = np.cumsum([len(r) for r in flat]).astype(np.uint32)
    idx = np.asarray(mapbox_earcut.triangulate_float64(pts2, ends), dtype=np.int64).reshape(-1, 3)
    points = np.concatenate(rings)
    if len(idx) == 0:
        raise DegeneratePolygon("triangulation produced no triangles (self-intersecting or collinear ring)")
    # Orient every triangle counter-clockwise in the projected plane (earcut's order is unspecified).
    p = pts2[idx]
    cross = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    flip = cross * ccw_normal_z < 0
    idx[flip] = idx[flip][:, [0, 2, 1]]
    idx = idx[cross != 0]
    if len(idx) == 0:
        raise DegeneratePolygon("all triangles are degenerate")
    return points, idx.astype(np.int32)


# ------------------------------------------------------------------------------ many polygons at once


@dataclass
class SurfaceMesh:
    """Triangulated polygons (e.g. the surfaces of one city object), one class per triangle.

    Attributes
    ----------
    vertices : (v, 3) float64
        Metres, in the frame of the input rings (the CityGML importer: local x, y and orthometric
        z, shifted to local z only when the scene is assembled).
    faces : (f, 3) int64
        Vertex indices, wound like the source polygons.
    semantics : (f,) uint8
        :class:`~vlwm.labels.CityClass` of each triangle.
    bad : int
        Polygons dropped as degenerate or unreadable.
    reason : str
        Why the (last) dropped polygon, or the whole surface, was unusable.
    """

    vertices: np.ndarray
    faces: np.ndarray
    semantics: np.ndarray
    bad: int = 0
    reason: str = ""

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @classmethod
    def empty(cls, reason: str = "", bad: int = 0) -> "SurfaceMesh":
        return cls(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.uint8), bad, reason)

    @classmethod
    def concat(cls, meshes: list["SurfaceMesh"]) -> "SurfaceMesh":
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])[:-1]
        return cls(np.concatenate([m.vertices for m in meshes]),
                   np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
                   np.concatenate([m.semantics for m in meshes]),
                   sum(m.bad for m in meshes), next((m.reason for m in meshes if m.reason), ""))


def triangulate_polygons(rings: list[list[np.ndarray]], classes: np.ndarray, min_area: float = 1e-6,
                          fast: bool = True) -> SurfaceMesh:
    """Triangulate polygons, one class each; degenerate ones are dropped and counted, not fatal.

    Parameters
    ----------
    rings : list of list of (k, 3) float64
        Per polygon its rings, exterior first (open or closed), metres.
    classes : (P,) uint8
        :class:`~vlwm.labels.CityClass` of each polygon.
    min_area : float
        Polygons below this area (m²) are degenerate.
    fast : bool
        Fan-triangulate convex hole-free polygons in bulk (:func:`_convex_fans`: most LOD1 walls,
        rectangular roofs, every TIN triangle); everything else, and everything when False, is
        ear-cut one by one on its own plane by :func:`triangulate_3d` (the reference).

    Returns
    -------
    SurfaceMesh with triangles wound like each polygon's exterior ring.
    """
    verts, faces, sems, bad, reason, n = [], [], [], 0, "", 0
    slow = np.ones(len(rings), bool)
    if fast:
        for k, idx in _simple_polygons_by_size(rings).items():
            ring = np.stack([rings[i][0][:k] for i in idx])                    # (m, k, 3)
            ok, tri = _convex_fans(ring, min_area)                              # (m,), (m, k-2, 3, 3)
            slow[np.asarray(idx)[ok]] = False
            tri = tri[ok]
            keep = _triangle_areas(tri) > MIN_FAN_TRIANGLE_AREA                # (m', k-2)
            verts.append(tri[keep].reshape(-1, 3))
            faces.append(n + np.arange(3 * int(keep.sum())).reshape(-1, 3))
            sems.append(np.repeat(classes[np.asarray(idx)[ok]], keep.sum(1)))
            n += 3 * int(keep.sum())
    for i in np.flatnonzero(slow):
        try:
            pts, f = triangulate_3d(rings[i][0], rings[i][1:], min_area=min_area)
        except DegeneratePolygon as exc:
            bad, reason = bad + 1, str(exc)
            continue
        verts.append(pts)
        faces.append(f.astype(np.int64) + n)
        sems.append(np.full(len(f), classes[i], np.uint8))
        n += len(pts)
    if not n:
        return SurfaceMesh.empty(reason or "no polygons", bad)
    return SurfaceMesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(sems).astype(np.uint8), bad, reason)


def _simple_polygons_by_size(rings: list[list[np.ndarray]]) -> dict[int, list[int]]:
    """Indices of hole-free polygons by distinct-vertex count k (closing vertex not counted), 3 <= k <= MAX_FAN_VERTICES."""
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rings):
        if len(r) != 1:
            continue
        ext = r[0]
        k = len(ext) - 1 if len(ext) > 3 and np.array_equal(ext[0], ext[-1]) else len(ext)
        if 3 <= k <= MAX_FAN_VERTICES:
            groups.setdefault(k, []).append(i)
    return groups


def _convex_fans(ring: np.ndarray, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangles of convex polygons.

    ``ring``: (m, k, 3) float64, m polygons of k vertices.  Returns ``ok`` (m,) bool — finite,
    at least ``min_area``, and convex on the plane of its Newell normal (every turn the same way,
    once round) — and ``tri`` (m, k-2, 3, 3): triangles (v0, vj, vj+1), wound like the ring.
    """
    k = ring.shape[1]
    nxt = ring[:, np.r_[1:k, 0]]
    normal = np.stack([np.sum((ring[..., 1] - nxt[..., 1]) * (ring[..., 2] + nxt[..., 2]), 1),
                       np.sum((ring[..., 2] - nxt[..., 2]) * (ring[..., 0] + nxt[..., 0]), 1),
                       np.sum((ring[..., 0] - nxt[..., 0]) * (ring[..., 1] + nxt[..., 1]), 1)], 1)   # (m, 3)
    area2 = np.linalg.norm(normal, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = normal / area2[:, None]
        edge = nxt - ring                                                          # (m, k, 3)
        after = edge[:, np.r_[1:k, 0]]
        sin = np.einsum("mkc,mc->mk", _cross(edge, after), unit)                  # turn at each vertex
        cos = np.einsum("mkc,mkc->mk", edge, after)
        scale = np.linalg.norm(edge, axis=2) * np.linalg.norm(after, axis=2)
        turning = np.arctan2(sin, cos).sum(1)
    ok = (np.isfinite(ring).all((1, 2)) & (area2 / 2 > min_area) & (sin >= -CONVEX_TOLERANCE * scale).all(1)
          & (np.abs(turning - 2 * np.pi) < CONVEX_TOLERANCE))
    j = np.arange(1, ring.shape[1] - 1)
    tri = np.stack([np.broadcast_to(ring[:, :1], (len(ring), len(j), 3)), ring[:, j], ring[:, j + 1]], axis=2)
    return ok, tri


def _triangle_areas(tri: np.ndarray) -> np.ndarray:
    """Areas (m²) of triangles (..., 3, 3)."""
    return 0.5 * np.linalg.norm(_cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :]), axis=-1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (np.cross without its per-call overhead on small arrays)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)
