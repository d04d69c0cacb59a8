"""Terrain builders: height fields from scattered ground samples and from a ground mesh."""

import numpy as np

from vlwm.world.terrain import Terrain


def plane(x, y):
    """A tilted ground (m) at local (x, y) metres."""
    return 3.0 + 0.1 * x - 0.05 * y


def test_from_samples_is_exact_on_a_plane_and_covers_bounds(rng):
    xy = rng.uniform(-40, 40, (200, 2))
    points = np.column_stack([xy, plane(xy[:, 0], xy[:, 1])])
    terrain = Terrain.from_samples(points, (-50.0, -45.0, 52.0, 47.0), 5.0)
    assert (terrain.x0, terrain.y0, terrain.resolution) == (-50.0, -45.0, 5.0)
    xmin, ymin, xmax, ymax = terrain.bounds
    assert xmax >= 52.0 and ymax >= 47.0 and terrain.heights.dtype == np.float32
    # Inside the samples' hull the linear interpolation of a plane is the plane (to 1 cm rounding).
    gx, gy = np.meshgrid(np.arange(-30.0, 31.0, 5.0), np.arange(-30.0, 31.0, 5.0))
    np.testing.assert_allclose(terrain.height(gx, gy), plane(gx, gy), atol=0.02)
    # Outside it every sample takes the nearest ground sample's height: all finite, within range.
    assert np.all(np.isfinite(terrain.heights))
    assert terrain.heights.min() >= points[:, 2].min() - 0.01 and terrain.heights.max() <= points[:, 2].max() + 0.01


def test_from_samples_collinear_falls_back_to_nearest():
    points = np.array([[0.0, 0.0, 1.0], [10.0, 0.0, 2.0], [20.0, 0.0, 3.0]])
    terrain = Terrain.from_samples(points, (-5.0, -5.0, 25.0, 5.0), 5.0)
    np.testing.assert_array_equal(terrain.heights, [[1, 1, 1, 2, 2, 3, 3]] * 3)


def test_from_mesh_rasterises_the_mesh():
    corners = np.array([[-20.0, -20.0], [20.0, -20.0], [20.0, 20.0], [-20.0, 20.0]])
    vertices = np.column_stack([corners, plane(corners[:, 0], corners[:, 1])])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    terrain = Terrain.from_mesh(vertices, faces, (-30.0, -30.0, 30.0, 30.0), 2.0)
    gx, gy = np.meshgrid(np.arange(-18.0, 19.0, 2.0), np.arange(-18.0, 19.0, 2.0))
    np.testing.assert_allclose(terrain.height(gx, gy), plane(gx, gy), atol=1e-3)
    # Beyond the mesh: the nearest hit, so the edge heights carry on.
    assert abs(terrain.height(-30.0, -30.0) - plane(-20.0, -20.0)) < 0.5


def test_from_mesh_smaller_than_a_sample_uses_its_vertices():
    vertices = np.array([[10.2, 10.2, 4.0], [10.8, 10.2, 5.0], [10.2, 10.8, 6.0]])
    faces = np.array([[0, 1, 2]])
    bounds = (10.0, 10.0, 11.0, 11.0)
    terrain = Terrain.from_mesh(vertices, faces, bounds, 5.0)
    np.testing.assert_array_equal(terrain.heights, Terrain.from_samples(vertices, bounds, 5.0).heights)
