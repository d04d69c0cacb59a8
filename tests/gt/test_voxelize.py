"""Voxelisation kernels against their references, and the properties they promise: exact
triangle-voxel overlap, solid boxes fill exactly the voxels they meet, priorities decide."""

import numpy as np
import pytest

from vlwm.gt.voxelize import fill_solids, splat_points, triangle_box_overlap, voxelize_surfaces
from vlwm.labels import FREE, OCC3D_ID
from vlwm.world.builder import box_mesh

SHAPE = (24, 20, 12)


def empty():
    return np.full(SHAPE, FREE, np.uint8)


def random_triangles(rng, n, spread=4.0):
    centres = rng.uniform(-3, np.array(SHAPE) + 3, (n, 1, 3))
    return centres + rng.normal(0, spread, (n, 3, 3))


def random_boxes(rng, n):
    """Randomly turned and tilted closed boxes (index space): triangles (n, 12, 3, 3) and axes (n, 3, 3),
    the box's edge directions as rows."""
    tris, axes = [], []
    for _ in range(n):
        v, f = box_mesh(rng.uniform(0, SHAPE), rng.uniform(0.3, 7, 3), rng.uniform(-np.pi, np.pi))
        a = rng.uniform(-0.5, 0.5)                         # tilt about x: roofs and floors not level either
        tilt = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        c = v.mean(0)
        v = (v - c) @ tilt.T + c
        tris.append(v[f])
        axes.append(np.stack([v[1] - v[0], v[3] - v[0], v[4] - v[0]]))   # length, width, height edges
    return np.array(tris), np.array(axes)


@pytest.mark.parametrize("seed", range(4))
def test_surface_kernel_matches_the_separating_axis_reference(seed, tiny):
    rng = np.random.default_rng(seed)
    tri = random_triangles(rng, 40)
    labels = rng.integers(0, FREE, len(tri)).astype(np.uint8)
    fast, ref = empty(), empty()
    voxelize_surfaces(fast, tri, labels, tiny.ranks)
    voxelize_surfaces(ref, tri, labels, tiny.ranks, backend="numpy")
    assert (fast != FREE).sum() > 300
    np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("seed", range(3))
def test_fill_kernel_matches_the_reference(seed, tiny):
    rng = np.random.default_rng(10 + seed)
    tri = random_boxes(rng, 6)[0].reshape(-1, 3, 3)
    groups = np.repeat(np.arange(6), 12)
    labels = rng.integers(0, FREE, 6).astype(np.uint8)
    fast, ref = empty(), empty()
    fill_solids(fast, tri, groups, labels, tiny.ranks)
    fill_solids(ref, tri, groups, labels, tiny.ranks, backend="numpy")
    assert (fast != FREE).sum() > 50
    np.testing.assert_array_equal(fast, ref)


def box_meets_voxels(tri12, box_axes):
    """(X, Y, Z) bool: voxels whose cube meets the solid box (separating axes of two boxes: the 3 + 3
    face normals and their 9 cross products)."""
    corners = tri12.reshape(-1, 3)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1).reshape(-1, 3)
    centre = idx + 0.5
    axes = list(np.eye(3)) + list(box_axes) + [np.cross(a, b) for a in np.eye(3) for b in box_axes]
    meet = np.ones(len(idx), bool)
    for a in axes:
        if np.linalg.norm(a) < 1e-9:
            continue
        p = corners @ a
        c = centre @ a
        r = 0.5 * np.abs(a).sum()
        meet &= (p.min() <= c + r) & (p.max() >= c - r)
    return meet.reshape(SHAPE)


@pytest.mark.parametrize("seed", range(3))
def test_surface_plus_fill_marks_exactly_the_voxels_a_solid_box_meets(seed, tiny):
    rng = np.random.default_rng(20 + seed)
    tris, axes = random_boxes(rng, 1)
    box = tris[0]
    sem = empty()
    car = np.uint8(OCC3D_ID["car"])
    voxelize_surfaces(sem, box, np.full(12, car), tiny.ranks)
    fill_solids(sem, box, np.zeros(12, int), np.array([car]), tiny.ranks)
    np.testing.assert_array_equal(sem == car, box_meets_voxels(box, axes[0]))


def test_hollow_shell_without_fill(tiny):
    v, f = box_mesh((12.0, 10.0, 1.0), (10.0, 8.0, 8.0), 0.0)
    sem = empty()
    voxelize_surfaces(sem, v[f], np.full(12, OCC3D_ID["manmade"], np.uint8), tiny.ranks)
    assert sem[12, 10, 5] == FREE and sem[7, 10, 5] == OCC3D_ID["manmade"]
    fill_solids(sem, v[f], np.zeros(12, int), np.array([OCC3D_ID["manmade"]], np.uint8), tiny.ranks)
    assert sem[12, 10, 5] == OCC3D_ID["manmade"]


def test_fill_needs_no_watertight_mesh(tiny):
    """A box without its floor: each column meets only the roof, so nothing is filled — no column leaks
    to the grid's bottom or top as ray parity or winding numbers would."""
    v, f = box_mesh((12.0, 10.0, 2.2), (6.0, 6.0, 5.0), 0.0)
    roof_and_walls = v[f][2:]                                       # faces 0, 1 are the floor
    sem = empty()
    fill_solids(sem, roof_and_walls, np.zeros(10, int), np.array([OCC3D_ID["manmade"]], np.uint8), tiny.ranks)
    assert np.all(sem == FREE)


def test_a_face_on_a_voxel_boundary_marks_both_neighbours(tiny):
    tri = np.array([[[2.0, 2.0, 5.0], [9.0, 2.5, 5.0], [3.0, 8.0, 5.0]]])
    for backend in ("numba", "numpy"):
        sem = empty()
        voxelize_surfaces(sem, tri, np.array([OCC3D_ID["terrain"]], np.uint8), tiny.ranks, backend=backend)
        assert set(np.unique(np.argwhere(sem != FREE)[:, 2])) == {4, 5}


def test_priority_decides_regardless_of_order(tiny, rng):
    ground = np.array([[[0, 0, 3.5], [30, 0, 3.5], [0, 30, 3.5]]], float)
    car = np.array([[[4, 4, 3.2], [6, 4, 3.8], [4, 6, 3.6]]], float)
    labels = np.array([OCC3D_ID["driveable_surface"], OCC3D_ID["car"]], np.uint8)
    a, b = empty(), empty()
    voxelize_surfaces(a, np.concatenate([ground, car]), labels, tiny.ranks)
    voxelize_surfaces(b, np.concatenate([car, ground]), labels[::-1], tiny.ranks)
    np.testing.assert_array_equal(a, b)
    assert a[4, 4, 3] == OCC3D_ID["car"] and a[10, 10, 3] == OCC3D_ID["driveable_surface"]


def test_point_splat_matches_reference(tiny, rng):
    pts = rng.uniform(-2, np.array(SHAPE) + 2, (3000, 3))
    labels = rng.integers(0, FREE + 1, len(pts)).astype(np.uint8)        # free-labelled points mark nothing
    a, b = empty(), empty()
    splat_points(a, pts, labels, tiny.ranks)
    splat_points(b, pts, labels, tiny.ranks, backend="numpy")
    np.testing.assert_array_equal(a, b)
    inside = np.all((pts >= 0) & (pts < SHAPE), axis=1) & (labels != FREE)
    i, j, k = np.floor(pts[inside]).astype(int).T
    assert np.all(a[i, j, k] != FREE)
    # through a transform (sensor frame -> index space), with extra columns that are ignored
    c, s = np.cos(0.7), np.sin(0.7)
    T = np.array([[2 * c, -2 * s, 0, 5], [2 * s, 2 * c, 0, 3], [0, 0, 1.5, 1], [0, 0, 0, 1.0]])
    raw = np.column_stack([rng.uniform(-6, 6, (3000, 3)), rng.random((3000, 2))]).astype(np.float32)
    a, b = empty(), empty()
    splat_points(a, raw, labels, tiny.ranks, T)
    splat_points(b, raw[:, :3].astype(np.float64) @ T[:3, :3].T + T[:3, 3], labels, tiny.ranks, backend="numpy")
    np.testing.assert_array_equal(a, b)


def test_triangle_box_overlap_basic_cases():
    tri = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    centres = np.array([[0.2, 0.2, 0.0], [0.2, 0.2, 0.6], [0.2, 0.2, 0.5], [2.0, 2.0, 0.0], [0.9, 0.9, 0.0]])
    np.testing.assert_array_equal(triangle_box_overlap(tri, centres, 0.5), [True, False, True, False, True])
    np.testing.assert_array_equal(triangle_box_overlap(tri, np.array([[1.2, 1.2, 0.0]]), 0.1), [False])


def test_unknown_backend_is_an_error(tiny):
    with pytest.raises(ValueError, match="unknown voxelisation backend 'cuda'"):
        voxelize_surfaces(empty(), np.zeros((0, 3, 3)), np.zeros(0, np.uint8), tiny.ranks, backend="cuda")
