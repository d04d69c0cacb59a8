"""Triangulation: ear-cut polygons with holes in 2-D and 3-D, degenerate rings, and the bulk
convex-fan path of ``triangulate_polygons`` against the one-by-one ear-cut reference."""

import numpy as np
import pytest

from vlwm.world.triangulate import DegeneratePolygon, triangulate_2d, triangulate_3d, triangulate_polygons


def test_triangulation_area_and_holes(rng):
    # A square with a square hole: total triangle area = outer - hole.
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], float)
    hole = np.array([[3, 3], [3, 6], [6, 6], [6, 3]], float)
    pts, faces = triangulate_2d(outer, [hole])
    p = pts[faces]
    cross = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    assert np.all(cross > 0) and cross.sum() / 2 == pytest.approx(91.0)
    # The same polygon rotated into a random 3-D plane keeps its area and winding normal.
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    lift = lambda r: np.column_stack([r, np.zeros(len(r))]) @ q.T + [5, -3, 40]
    pts3, faces3 = triangulate_3d(lift(outer), [lift(hole)])
    t = pts3[faces3]
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    assert np.linalg.norm(n, axis=1).sum() / 2 == pytest.approx(91.0)
    assert np.all(n @ (q @ [0, 0, 1]) > 0)


def test_degenerate_polygons_are_reported():
    with pytest.raises(DegeneratePolygon, match="distinct points"):
        triangulate_3d(np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1.0]]))
    with pytest.raises(DegeneratePolygon, match="area"):
        triangulate_3d(np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]]))


def test_triangulate_polygons_fast_matches_reference():
    """Seeded random convex and concave polygons in 3-D: same areas and normals either way."""
    rng = np.random.default_rng(0)
    rings, classes = [], []
    for k in range(40):
        n = int(rng.integers(3, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(1, 10) * (rng.uniform(0.4, 1.0, n) if k % 2 else np.ones(n))  # odd: star-shaped
        flat = np.column_stack([radius * np.cos(ang), radius * np.sin(ang), np.zeros(n)])
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))                                       # random plane
        ring = flat @ q.T + rng.uniform(-100, 100, 3)
        rings.append([np.vstack([ring, ring[:1]])])
        classes.append(k % 3)
    classes = np.array(classes, np.uint8)
    fast = triangulate_polygons(rings, classes, fast=True)
    slow = triangulate_polygons(rings, classes, fast=False)
    assert fast.bad == slow.bad == 0

    def per_class(mesh):
        tri = mesh.vertices[mesh.faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) / 2
        return [cross[mesh.semantics == c].sum(0) for c in range(3)], np.linalg.norm(cross, axis=1).sum()

    (nf, af), (ns, as_) = per_class(fast), per_class(slow)
    assert abs(af - as_) < 1e-6 * as_
    for a, b in zip(nf, ns):
        np.testing.assert_allclose(a, b, atol=1e-6)
