"""Ray casting: the Embree backend agrees with the numpy reference, and hits carry the right labels."""

import numpy as np
import pytest

from vlwm.labels import FREE, OCC3D_ID, CityClass
from vlwm.world.builder import SceneBuilder, box_mesh, ellipsoid_mesh
from vlwm.world.geo import GeoOrigin
from vlwm.world.raycast import UNIT_TOLERANCE, EmbreeTracer, NumpyTracer, normalize_directions
from vlwm.world.terrain import Terrain


def tiny_scene(seed=0, n_boxes=12):
    rng = np.random.default_rng(seed)
    b = SceneBuilder()
    ground = np.array([[-50, -50], [50, -50], [50, 50], [-50, 50]], float)
    from vlwm.world.triangulate import triangulate_2d

    pts, faces = triangulate_2d(ground)
    b.add_mesh(np.column_stack([pts, np.zeros(len(pts))]), faces, CityClass.ROAD)
    for i in range(n_boxes):
        inst = b.new_instance(f"bldg_{i}", CityClass.BUILDING)
        c = rng.uniform(-40, 40, 2)
        b.add_box((c[0], c[1], 0.0), rng.uniform(3, 10, 3) * [1, 1, 3], rng.uniform(0, np.pi), CityClass.BUILDING, inst)
    tree = b.new_instance("tree_0", CityClass.VEGETATION)
    v, f = ellipsoid_mesh((0, 0, 30), (4, 4, 3))
    b.add_mesh(v, f, CityClass.VEGETATION, tree)
    return b.build(Terrain.flat(0.0, (-50, -50, 50, 50)), GeoOrigin.at_latlon(35.68, 139.76))


def random_rays(rng, n):
    o = rng.uniform([-45, -45, 0.5], [45, 45, 60], (n, 3))
    d = rng.normal(size=(n, 3))
    return o, normalize_directions(d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_embree_matches_numpy_reference(seed):
    scene = tiny_scene(seed)
    rng = np.random.default_rng(100 + seed)
    o, d = random_rays(rng, 3000)
    ranges = rng.uniform(5, 80, len(o)).astype(np.float32)
    fast = scene.cast(o, d, ranges, backend="embree")
    ref = scene.cast(o, d, ranges, backend="numpy")
    assert fast.hit.sum() > 500 and (~fast.hit).sum() > 100  # both outcomes are exercised
    np.testing.assert_array_equal(fast.hit, ref.hit)
    both = fast.hit & ref.hit
    np.testing.assert_allclose(fast.distance[both], ref.distance[both], atol=2e-3)
    # The same triangle, except where a ray grazes a shared edge (then the distances agree).
    same = fast.triangle == ref.triangle
    assert same.mean() > 0.995
    np.testing.assert_array_equal(fast.cls[same], ref.cls[same])
    np.testing.assert_array_equal(fast.instance[same], ref.instance[same])
    np.testing.assert_allclose(fast.normal[same], ref.normal[same], atol=1e-5)


def test_misses_are_explicit():
    scene = tiny_scene()
    o = np.array([[0, 0, 100.0], [0, 0, 100.0], [0, 0, 100.0]])
    d = np.array([[0, 0, 1.0], [1, 0, 0.0], [0, 0, -1.0]])
    for backend in ("embree", "numpy"):
        h = scene.cast(o, d, max_range=np.array([1e3, 1e3, 10.0]), backend=backend)
        assert np.all(np.isinf(h.distance)) and np.all(h.triangle == -1)
        assert np.all(h.cls == FREE) and np.all(h.instance == -1)
        assert np.all(h.normal == 0)


def test_hit_attributes_are_those_of_the_hit_triangle():
    scene = tiny_scene()
    # Straight down through the tree crown at the origin: crown top at 33 m.
    h = scene.cast([[0, 0, 50.0], [45, 45, 10.0]], [[0, 0, -1.0], [0, 0, -1.0]])
    assert h.semantic[0] == CityClass.VEGETATION and h.cls[0] == OCC3D_ID["vegetation"]
    assert h.distance[0] == pytest.approx(17.0, abs=0.05)
    assert scene.instance_names[h.instance[0]] == "tree_0"
    assert h.normal[0, 2] > 0.9  # faces back up towards the ray origin
    if h.semantic[1] == CityClass.ROAD:  # the corner may be covered by a random box
        assert h.cls[1] == OCC3D_ID["driveable_surface"] and h.instance[1] == -1
        assert h.distance[1] == pytest.approx(10.0, abs=1e-4)


def test_normals_face_the_ray():
    scene = tiny_scene(3)
    rng = np.random.default_rng(7)
    o, d = random_rays(rng, 2000)
    h = scene.cast(o, d, 100.0)
    assert np.all(np.einsum("ij,ij->i", h.normal[h.hit], d[h.hit]) <= 1e-6)
    np.testing.assert_allclose(np.linalg.norm(h.normal[h.hit], axis=1), 1, atol=1e-5)


def test_box_distance_exact():
    v, f = box_mesh((0, 0, 0), (2, 2, 2))
    o = np.array([[-5.0, 0.3, 1.2]])
    d = np.array([[1.0, 0, 0]], np.float32)
    for tracer in (EmbreeTracer(v, f), NumpyTracer(v, f)):
        t, tri = tracer.intersect(o, d, np.inf)
        assert t[0] == pytest.approx(4.0, abs=1e-5) and tri[0] >= 0


def test_zero_direction_is_an_error():
    scene = tiny_scene()
    with pytest.raises(ValueError, match="direction 1 is zero"):
        scene.cast([[0, 0, 1.0], [0, 0, 1.0]], [[0, 0, 1.0], [0, 0, 0.0]])


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown ray backend"):
        tiny_scene().cast([[0, 0, 1.0]], [[0, 0, 1.0]], backend="optix")


def normalize_reference(d):
    """The whole-array numpy formulation of :func:`normalize_directions` (float32 throughout)."""
    d = np.ascontiguousarray(d, dtype=np.float32)
    sq = np.einsum("ij,ij->i", d, d)
    return d if np.abs(sq - 1).max(initial=0.0) < UNIT_TOLERANCE else d / np.sqrt(sq)[:, None]


@pytest.mark.parametrize("seed", range(3))
def test_normalize_directions_matches_the_numpy_formulation(seed):
    """Unit rows come back untouched; one row off unit length by more than the tolerance (in
    float32 squared length) normalises the whole array, bit for bit as numpy does."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(5000, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    got = normalize_directions(d)
    assert got.tobytes() == normalize_reference(d).tobytes()
    np.testing.assert_array_equal(got, d)
    # Straddle the tolerance: scale one row so its squared length is 1 +- a few ulps around it.
    for scale in np.sqrt(1 + UNIT_TOLERANCE * np.array([0.5, 0.99, 1.01, 2.0, -0.99, -1.01, -2.0])):
        e = d.copy()
        e[rng.integers(len(e))] *= np.float32(scale)
        assert normalize_directions(e).tobytes() == normalize_reference(e).tobytes()
    wild = rng.normal(size=(100, 3)) * rng.uniform(1e-3, 1e3, (100, 1))
    assert normalize_directions(wild).tobytes() == normalize_reference(wild).tobytes()
    for bad in (np.nan, np.inf):
        e = d.copy()
        e[7, 1] = bad
        with pytest.raises(ValueError, match="ray direction 7 is zero or not finite"):
            normalize_directions(e)


def test_embree_reads_a_broadcast_origin_in_place():
    """A single origin broadcast to every ray (stride 0, no copy) gives the hits of a full copy."""
    scene = tiny_scene(4)
    rng = np.random.default_rng(9)
    _, d = random_rays(rng, 3000)
    origin = np.array([3.0, -2.0, 20.0], np.float32)
    tracer = EmbreeTracer(scene.vertices, scene.faces)
    view = tracer.intersect(np.broadcast_to(origin, d.shape), d, 60.0)
    copy = tracer.intersect(np.tile(origin, (len(d), 1)), d, 60.0)
    for got, want in zip(view, copy):
        assert got.tobytes() == want.tobytes()
    assert (view[1] >= 0).sum() > 1000
