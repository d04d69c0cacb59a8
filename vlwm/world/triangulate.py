"""Polygon triangulation (with holes) for planar polygons in 2-D and 3-D.

3-D rings (CityGML surfaces) are projected onto their own plane — the Newell normal of the
exterior ring — and ear-cut there (mapbox_earcut), so walls, sloped roofs and floors all
triangulate the same way.  Output triangles wind like the exterior ring: counter-clockwise seen
from the side the Newell normal points to.
"""

from __future__ import annotations

from typing import Sequence

import mapbox_earcut
import numpy as np


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
