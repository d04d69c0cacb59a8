"""Lidar simulation: returns lie on the scene's surfaces with the labels of what they hit, the
sweep pattern follows the config, noise and dropout are seeded, and the drone lidar sees the
ground from altitude."""

import dataclasses

import numpy as np
import pytest

from vlwm.io.frames import Pose, transform_points
from vlwm.io.recording import LIDAR_COLUMNS
from vlwm.labels import FREE, OCC3D_ID, CityClass
from vlwm.sim.lidar import REFLECTIVITY, LidarConfig, drone_lidar, rover_lidar, scan, sweep_pattern

ROAD_HALF_WIDTH = 6.0  # as in conftest.box_city
#: Buildings: (bottom centre, (length, width, height), yaw) in metres / radians.
BOXES = [((30.0, 20.0, 0.0), (12.0, 10.0, 24.0), 0.3), ((-25.0, -30.0, 0.0), (15.0, 9.0, 12.0), 0.0),
         ((10.0, -40.0, 0.0), (8.0, 8.0, 40.0), 1.1), ((45.0, -12.0, 0.0), (6.0, 14.0, 9.0), -0.4)]
GROUND = (OCC3D_ID["driveable_surface"], OCC3D_ID["terrain"])
SURFACE_TOL = 0.01  # m




def world_points(points, pose, config):
    return transform_points(pose.matrix() @ config.T_body_sensor(), points[:, :3])


POSES_AND_CONFIGS = [
    ("rover", Pose.from_xyz_rpy(0.0, (2.0, -1.0, 0.0), (0.0, 0.0, 0.4)), rover_lidar()),
    ("drone", Pose.from_xyz_rpy(0.0, (5.0, 3.0, 30.0), (0.05, -0.1, 2.0)), drone_lidar()),
    ("tilted", Pose.from_xyz_rpy(0.0, (0.0, 0.0, 10.0), (0.0, 0.0, -0.7)),
     LidarConfig(beams=32, columns=1024, fov_up_deg=20.0, fov_down_deg=-40.0, mount_xyz=(0.5, -0.2, 1.0),
                 mount_rpy=(0.2, 0.35, 0.6))),
]


@pytest.fixture(scope="module")
def scene(make_box_city):
    return make_box_city(BOXES)


@pytest.mark.parametrize("name,pose,config", POSES_AND_CONFIGS, ids=[p[0] for p in POSES_AND_CONFIGS])
def test_returns_lie_on_surfaces_with_their_labels(scene, box_surface_distance, name, pose, config):
    pts = scan(scene.cast, pose, config)
    assert pts.dtype == np.float32 and pts.shape[1] == len(LIDAR_COLUMNS) == 8
    assert len(pts) > 0.2 * config.num_rays
    label, inst = pts[:, 4].astype(int), pts[:, 5].astype(int)
    assert not np.any(label == FREE)
    world = world_points(pts, pose, config)
    ground = np.isin(label, GROUND)
    assert ground.sum() > 100
    np.testing.assert_array_less(np.abs(world[ground, 2]), SURFACE_TOL)
    assert np.all(inst[ground] == -1)
    on_road = np.abs(world[ground, 1]) < ROAD_HALF_WIDTH - SURFACE_TOL
    off_road = np.abs(world[ground, 1]) > ROAD_HALF_WIDTH + SURFACE_TOL
    assert np.all(label[ground][on_road] == OCC3D_ID["driveable_surface"])
    assert np.all(label[ground][off_road] == OCC3D_ID["terrain"])
    building = label == OCC3D_ID["manmade"]
    assert building.sum() > 50 and np.all(ground | building)
    for i, box in enumerate(BOXES):
        mine = building & (inst == i)
        np.testing.assert_array_less(box_surface_distance(world[mine], box), SURFACE_TOL)
    # Casting back from the sensor towards each point finds the same surface at the same range.
    origin = (pose.matrix() @ config.T_body_sensor())[:3, 3]
    rng_m = np.linalg.norm(pts[:, :3], axis=1)
    back = scene.cast(np.broadcast_to(origin, world.shape), world - origin, rng_m + 1.0)
    np.testing.assert_allclose(back.distance, rng_m, atol=SURFACE_TOL)
    np.testing.assert_array_equal(back.cls, label)
    np.testing.assert_array_equal(back.instance, inst)
    assert np.all((rng_m >= config.min_range) & (rng_m <= config.max_range))


def test_sweep_pattern_follows_the_config(scene):
    config = LidarConfig(beams=16, columns=360, fov_up_deg=5.0, fov_down_deg=-35.0, rate_hz=20.0,
                         mount_xyz=(0, 0, 1.5))
    pts = scan(scene.cast, Pose.from_xyz_rpy(0.0, (0, 0, 0), (0, 0, 0.9)), config)
    ring, t = pts[:, 6], pts[:, 7]
    assert np.all(ring == np.round(ring)) and ring.min() >= 0 and ring.max() < config.beams
    assert np.all((t >= 0) & (t < 1.0 / config.rate_hz))
    column = t * config.columns * config.rate_hz
    np.testing.assert_allclose(column, np.round(column), atol=1e-3)
    column = np.round(column).astype(int)
    # Clockwise spin from the rear: column k looks at azimuth pi - 2 pi k / columns; ring 0 lowest.
    azimuth = np.arctan2(pts[:, 1], pts[:, 0])
    expected = np.pi - 2 * np.pi * column / config.columns
    np.testing.assert_allclose(np.angle(np.exp(1j * (azimuth - expected))), 0, atol=1e-4)
    elevation = np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1]))
    np.testing.assert_allclose(elevation, config.elevations()[ring.astype(int)], atol=1e-4)
    assert np.all(np.diff(column) >= 0)  # firing order
    d, r, tt = sweep_pattern(config)
    assert d.shape == (config.num_rays, 3) and not d.flags.writeable
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1, atol=1e-6)


def test_mount_pitch_tilts_the_forward_beams_down(scene):
    """Positive mount pitch looks down (right-hand rule about body y, which points left)."""
    pitch, height = 0.5, 10.0
    config = LidarConfig(beams=1, columns=4, fov_up_deg=0.0, fov_down_deg=0.0, mount_xyz=(1.0, 0.0, 0.0),
                         mount_rpy=(0.0, pitch, 0.0))
    pts = scan(scene.cast, Pose.from_xyz_rpy(0.0, (0.0, 0.0, height)), config)
    assert len(pts) == 1  # only the forward column (azimuth 0 = column 2) reaches anything
    assert pts[0, 7] == pytest.approx(2 / (config.columns * config.rate_hz))
    assert pts[0, 0] == pytest.approx(height / np.sin(pitch), abs=1e-3)
    world = world_points(pts, Pose.from_xyz_rpy(0.0, (0.0, 0.0, height)), config)
    np.testing.assert_allclose(world[0], [1.0 + height / np.tan(pitch), 0.0, 0.0], atol=1e-3)


def test_intensity_is_reflectivity_times_incidence_cosine(scene):
    pose, config = Pose.from_xyz_rpy(0.0, (0, 0, 40.0)), drone_lidar()
    pts = scan(scene.cast, pose, config)
    assert np.all((pts[:, 3] >= 0) & (pts[:, 3] <= 1))
    ground = np.isin(pts[:, 4], GROUND)
    world = world_points(pts, pose, config)
    origin = (pose.matrix() @ config.T_body_sensor())[:3, 3]
    ray = world - origin
    cos = np.abs(ray[:, 2]) / np.linalg.norm(ray, axis=1)  # ground normal is +z
    city = np.where(pts[:, 4] == OCC3D_ID["driveable_surface"], CityClass.ROAD, CityClass.TERRAIN)
    np.testing.assert_allclose(pts[ground, 3], REFLECTIVITY[city[ground]] * cos[ground], atol=1e-4)


def test_noise_off_is_exact_and_reproducible(scene):
    pose = POSES_AND_CONFIGS[0][1]
    a, b = scan(scene.cast, pose, rover_lidar()), scan(scene.cast, pose, rover_lidar(), rng=None)
    np.testing.assert_array_equal(a, b)


def _ray_index(pts, config):
    column = np.round(pts[:, 7] * config.columns * config.rate_hz).astype(int)
    return column * config.beams + pts[:, 6].astype(int)


def test_seeded_range_noise(scene):
    pose = POSES_AND_CONFIGS[1][1]
    sigma = 0.05
    noisy_cfg = dataclasses.replace(drone_lidar(), range_noise_std=sigma)
    exact = scan(scene.cast, pose, drone_lidar())
    a = scan(scene.cast, pose, noisy_cfg, np.random.default_rng(7))
    b = scan(scene.cast, pose, noisy_cfg, np.random.default_rng(7))
    c = scan(scene.cast, pose, noisy_cfg, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, :3], c[:, :3])
    # The same rays: the noise moves points along their rays only, labels unchanged.
    ia, ie = _ray_index(a, noisy_cfg), _ray_index(exact, noisy_cfg)
    common, ka, ke = np.intersect1d(ia, ie, return_indices=True)
    assert len(common) > 0.99 * len(exact)
    ra, re = np.linalg.norm(a[ka, :3], axis=1), np.linalg.norm(exact[ke, :3], axis=1)
    np.testing.assert_allclose(a[ka, :3] / ra[:, None], exact[ke, :3] / re[:, None], atol=1e-5)
    np.testing.assert_array_equal(a[ka, 4:], exact[ke, 4:])
    residual = ra - re
    n = len(residual)
    assert abs(residual.mean()) < 5 * sigma / np.sqrt(n)
    assert residual.std() == pytest.approx(sigma, rel=6 / np.sqrt(2 * n))


def test_seeded_dropout_fraction(scene):
    pose, p = POSES_AND_CONFIGS[0][1], 0.3
    cfg = dataclasses.replace(rover_lidar(), dropout=p)
    full = scan(scene.cast, pose, rover_lidar())
    a = scan(scene.cast, pose, cfg, np.random.default_rng(3))
    np.testing.assert_array_equal(a, scan(scene.cast, pose, cfg, np.random.default_rng(3)))
    n = len(full)
    assert abs(len(a) - (1 - p) * n) < 5 * np.sqrt(n * p * (1 - p))
    assert np.all(np.isin(_ray_index(a, cfg), _ray_index(full, cfg)))


@pytest.mark.parametrize("altitude", [30.0, 150.0])
def test_drone_lidar_sees_ground_and_buildings_from_altitude(scene, altitude):
    pose = Pose.from_xyz_rpy(0.0, (0.0, 0.0, altitude), (0.0, 0.0, 0.3))
    pts = scan(scene.cast, pose, drone_lidar())
    label = pts[:, 4]
    ground = np.isin(label, GROUND)
    assert len(pts) > 0.15 * drone_lidar().num_rays
    assert ground.mean() > 0.5
    assert np.count_nonzero(label == OCC3D_ID["manmade"]) > 100
    assert np.all(pts[ground, 2] < 0)  # the ground lies below the sensor


def test_config_errors_say_what_is_wrong(scene):
    with pytest.raises(ValueError, match="fov_down_deg"):
        LidarConfig(fov_up_deg=-10.0, fov_down_deg=10.0)
    with pytest.raises(ValueError, match="rng"):
        scan(scene.cast, Pose.from_xyz_rpy(0, (0, 0, 2)), LidarConfig(dropout=0.1))


# ------------------------------------------------------------------ lidar through traffic

from vlwm.sim.dynamic_world import (AZIMUTH_BINS, ELEVATION_BINS, DynamicWorld,  # noqa: E402
                                    _pseudo_azimuth, cone_candidates)
from vlwm.io.frames import rotate_vectors  # noqa: E402
from vlwm.sim.traffic import Traffic, TrafficConfig  # noqa: E402
from vlwm.world.procedural import CityConfig, generate_city  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)
BOX_ACTORS = (CityClass.CAR, CityClass.BUS, CityClass.TRUCK)  #: actors whose mesh is their box


@pytest.fixture(scope="module", params=[1, 2], ids=["city1", "city2"])
def traffic_world(request):
    """A tiny seeded procedural city with a little traffic of every kind."""
    seed = request.param
    city = generate_city(CityConfig(seed=seed, size=200.0))
    traffic = Traffic(city, TrafficConfig(seed=10 + seed, cars=8, buses=1, trucks=2, pedestrians=8, drones=2))
    return city, traffic, DynamicWorld(city, traffic)


def scan_reference(caster, pose, config, rng=None):
    """The sweep written with whole-array numpy operations (the formulation :func:`scan` compiles)."""
    d_sensor, ring, t = sweep_pattern(config)
    T = pose.matrix() @ config.T_body_sensor()
    d_world = rotate_vectors(T[:3, :3].astype(np.float32), d_sensor)
    hits = caster(np.broadcast_to(T[:3, 3].astype(np.float32), d_world.shape), d_world, config.max_range)
    r = hits.distance
    keep = np.flatnonzero((hits.triangle >= 0) & (r >= config.min_range) & (r <= config.max_range))
    r = r[keep]
    intensity = np.minimum(REFLECTIVITY[hits.semantic[keep]]
                           * np.abs(np.einsum("ij,ij->i", hits.normal, d_world))[keep], np.float32(1.0))
    if config.dropout > 0:
        alive = rng.random(len(keep)) >= config.dropout
        keep, r, intensity = keep[alive], r[alive], intensity[alive]
    if config.range_noise_std > 0:
        r = r + rng.normal(0.0, config.range_noise_std, len(r)).astype(np.float32)
        ok = (r >= config.min_range) & (r <= config.max_range)
        keep, r, intensity = keep[ok], r[ok], intensity[ok]
    columns = [d_sensor[keep, c] * r for c in range(3)]
    columns += [intensity, hits.cls[keep], hits.instance[keep], ring[keep], t[keep]]
    return np.stack([np.asarray(c, np.float32) for c in columns], 1)


def sweep_poses(traffic, t, rng, count):
    """Poses 2-40 m above and beside random actors (so actors fill part of every sweep)."""
    st = traffic.states(t)
    for a in rng.choice(len(traffic.actors), count, replace=False):
        xyz = st.position[a] + [rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(2, 40)]
        yield Pose.from_xyz_rpy(t, tuple(xyz), tuple(rng.uniform([-0.2, -0.2, -np.pi], [0.2, 0.2, np.pi])))


def test_scan_through_traffic_is_bit_identical_to_the_numpy_formulation(traffic_world):
    city, traffic, world = traffic_world
    rng = np.random.default_rng(0)
    configs = [rover_lidar(), drone_lidar(), POSES_AND_CONFIGS[2][2],
               dataclasses.replace(drone_lidar(), range_noise_std=0.03, dropout=0.2, min_range=0.7)]
    actor_points = 0
    for i, pose in enumerate(sweep_poses(traffic, 17.0, rng, 8)):
        config = configs[i % len(configs)]
        got = scan(world.caster(pose.timestamp), pose, config, np.random.default_rng(i))
        want = scan_reference(world.caster(pose.timestamp), pose, config, np.random.default_rng(i))
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        actor_points += int((got[:, 5] >= len(city.instance_names)).sum())
    assert actor_points > 500          # the sweeps did see traffic


def test_fast_cast_agrees_with_the_numpy_reference(traffic_world):
    """Embree with the angular cull against brute force over every (ray, triangle) pair, float64."""
    city, traffic, world = traffic_world
    rng = np.random.default_rng(1)
    t = 41.0
    st = traffic.states(t)
    actor_hits = 0
    for pose in sweep_poses(traffic, t, rng, 2):
        origin = pose.position
        target = st.position[rng.integers(len(st.position), size=400)] + rng.normal([0, 0, 0.8], 1.0, (400, 3))
        d = np.concatenate([target - origin, rng.normal(size=(100, 3))])        # at actors, and anywhere
        o = np.broadcast_to(np.asarray(origin, np.float32), d.shape)
        fast, ref = world.cast(o, d, 150.0, t), world.cast(o, d, 150.0, t, backend="numpy")
        actor_hits += (fast.triangle >= world.num_static_triangles).sum()
        np.testing.assert_array_equal(fast.hit, ref.hit)
        # Float32 (Embree) against float64: coordinates of a few hundred metres carry ~1e-5 m of
        # rounding; a ray through a triangle edge may report either triangle at the same range.
        both = fast.hit
        np.testing.assert_allclose(fast.distance[both], ref.distance[both], atol=1e-3)
        same = fast.triangle == ref.triangle
        assert same.mean() > 0.995
        np.testing.assert_array_equal(fast.instance, ref.instance)
        for got, want in zip(fast, ref):
            np.testing.assert_array_equal(np.asarray(got)[same & ~both], np.asarray(want)[same & ~both])
        np.testing.assert_array_equal(fast.semantic[same], ref.semantic[same])
        np.testing.assert_array_equal(fast.cls[same], ref.cls[same])
        np.testing.assert_allclose(fast.normal[same], ref.normal[same], atol=1e-5)
    assert actor_hits > 150


def oriented_box_hit(o, d, position, yaw, size):
    """float64 slab test: (distance, unit outward normal) where the ray (o, unit d) enters the box
    (bottom centre ``position``, ``yaw``, (l, w, h)); ``(inf, None)`` if it misses or starts inside."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    lo, ld = rot.T @ (o - position - [0, 0, size[2] / 2]), rot.T @ d
    half = np.asarray(size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - lo) / ld, (half - lo) / ld
    t1 = np.where(ld == 0, np.where(np.abs(lo) <= half, -np.inf, np.inf), t1)
    t2 = np.where(ld == 0, np.where(np.abs(lo) <= half, np.inf, -np.inf), t2)
    near = np.minimum(t1, t2)
    axis = int(np.argmax(near))
    if not (near[axis] <= np.maximum(t1, t2).min() and near[axis] > 0):
        return np.inf, None
    normal = np.zeros(3)
    normal[axis] = -np.sign(ld[axis])
    return float(near[axis]), rot @ normal


def test_actor_hits_are_the_analytic_box_with_its_id_and_class(traffic_world):
    """A lidar-like bundle from one origin at points inside box-shaped actors: every ray whose
    nearest float64 actor box lies in front of the scene returns that actor, its instance id, its
    class and label, at the analytic range, with the face's normal."""
    city, traffic, world = traffic_world
    rng = np.random.default_rng(2)
    t = 63.0
    st = traffic.states(t)
    boxes = [k for k, a in enumerate(traffic.actors) if a.semantic in BOX_ACTORS]
    checked = 0
    for pose in sweep_poses(traffic, t, rng, 4):
        origin = np.asarray(pose.position, np.float32).astype(np.float64)   # the ray origin Embree sees
        k_aim = rng.choice(boxes, 400)
        local = rng.uniform(-0.45, 0.45, (400, 3)) * [traffic.actors[k].size for k in k_aim]
        c, s = np.cos(st.yaw[k_aim]), np.sin(st.yaw[k_aim])
        aim = st.position[k_aim] + np.column_stack([c * local[:, 0] - s * local[:, 1],
                                                    s * local[:, 0] + c * local[:, 1],
                                                    local[:, 2] + 0.5 * np.array([traffic.actors[k].size[2]
                                                                                   for k in k_aim])])
        d = (aim - origin).astype(np.float32)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        hits = world.cast(np.broadcast_to(origin.astype(np.float32), d.shape), d, 200.0, t)
        static = city.cast(np.broadcast_to(origin.astype(np.float32), d.shape), d, 200.0)
        for r in range(len(d)):
            dr = d[r].astype(np.float64)
            found = [(oriented_box_hit(origin, dr, st.position[k], st.yaw[k], a.size), k)
                     for k, a in enumerate(traffic.actors)]
            (dist, normal), k = min(found, key=lambda f: f[0][0])
            if traffic.actors[k].semantic not in BOX_ACTORS or normal is None:
                continue                       # nearest is a pedestrian or drone (mesh inside its box)
            cos = abs(float(normal @ dr))
            # float32 vertices and origin: rounding <= eps32 * coordinate; the range error grows as 1/cos.
            tol = 8 * EPS32 * (np.abs(origin).max() + np.abs(aim).max() + dist) / max(cos, 1e-3)
            if dist > static.distance[r] - tol or cos < 0.05:
                continue                       # the scene is in front, or the ray grazes the face
            assert hits.triangle[r] >= world.num_static_triangles
            assert hits.instance[r] == traffic.actors[k].instance
            assert hits.semantic[r] == traffic.actors[k].semantic
            assert hits.cls[r] == city.label_map.table[traffic.actors[k].semantic]
            assert abs(hits.distance[r] - dist) <= tol
            np.testing.assert_allclose(hits.normal[r], normal, atol=1e-4)
            checked += 1
    assert checked > 500


def test_shared_origin_as_a_view_a_copy_or_a_list_gives_the_same_hits(traffic_world):
    city, traffic, world = traffic_world
    pose = next(sweep_poses(traffic, 5.0, np.random.default_rng(3), 1))
    d, _, _ = sweep_pattern(rover_lidar())
    origin = np.asarray(pose.position, np.float32)
    view = world.cast(np.broadcast_to(origin, d.shape), d, 120.0, 5.0)
    for origins in (np.tile(origin, (len(d), 1)), np.tile(origin, (len(d), 1)).astype(np.float64).tolist()):
        for got, want in zip(world.cast(origins, d, 120.0, 5.0), view):
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    assert (view.triangle >= world.num_static_triangles).any()


def ray_meets_sphere(origin, d, centre, radius, reach=np.inf):
    """(n,) bool, float64: the ray from ``origin`` along unit ``d`` (n, 3) enters the sphere within
    ``reach`` (m, scalar or (n,))."""
    v = np.asarray(centre, np.float64) - origin
    along = d @ v
    off = v - along[:, None] * d
    closest = np.einsum("ij,ij->i", off, off)
    entry = along - np.sqrt(np.maximum(radius ** 2 - closest, 0.0))
    return (along + radius > 0) & (closest <= radius ** 2) & (entry <= reach)


@pytest.mark.parametrize("seed", range(4))
def test_cull_keeps_every_ray_that_meets_a_sphere(seed):
    """Exact float64 ray-sphere tests against the cull, including rays along the axes, the poles
    and the bin edges, spheres straddling azimuth 0 and spheres next to the origin."""
    rng = np.random.default_rng(seed)
    origin = rng.uniform(-50, 50, 3)
    d = rng.normal(size=(40_000, 3))
    axes = np.concatenate([np.eye(3), -np.eye(3), [[1, 1, 0], [1, -1, 0], [-1, 1, 0], [-1, -1, 0]]])
    el = np.arcsin(np.linspace(-1, 1, ELEVATION_BINS + 1))                      # elevation bin edges
    az = np.linspace(-np.pi, np.pi, 97)
    grid = np.stack(np.broadcast_arrays(np.cos(el)[:, None] * np.cos(az), np.cos(el)[:, None] * np.sin(az),
                                        np.sin(el)[:, None]), -1).reshape(-1, 3)
    d = np.concatenate([d, axes, grid])
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    count = 12
    centres = origin + rng.normal(size=(count, 3)) * rng.uniform(3, 80, (count, 1))
    centres[0] = origin + [20.0, -0.3, -2.0]                                    # straddles azimuth 0
    centres[1] = origin + [0.0, 0.0, -4.0]                                      # the pole below
    radii = rng.uniform(0.3, 3.0, count)
    radii[1] = 2.0
    kept = cone_candidates(origin, d, centres, radii)
    d64 = d.astype(np.float64)
    need = np.zeros(len(d), bool)
    for c, r in zip(centres, radii):
        need |= ray_meets_sphere(origin, d64, c, r)
    assert need.sum() > 100
    missing = np.setdiff1d(np.flatnonzero(need), kept)
    assert len(missing) == 0, f"rays {missing[:5]} meet a sphere but were culled"
    assert np.all(np.diff(kept) > 0) and len(kept) < 0.5 * len(d)
    assert cone_candidates(centres[2], d, centres, radii) is None               # inside a sphere: no cull
    # With a reach (the scene hit distance) per ray: spheres entered only beyond it may be culled.
    reach = np.where(rng.random(len(d)) < 0.2, np.inf, rng.uniform(0, 100, len(d))).astype(np.float32)
    near = cone_candidates(origin, d, centres, radii, reach=reach)
    need = np.zeros(len(d), bool)
    for c, r in zip(centres, radii):
        need |= ray_meets_sphere(origin, d64, c, r, reach.astype(np.float64))
    missing = np.setdiff1d(np.flatnonzero(need), near)
    assert len(missing) == 0, f"rays {missing[:5]} reach a sphere but were culled"
    assert np.isin(near, kept).all() and len(near) < len(kept)
    with pytest.raises(ValueError, match="reach has shape"):
        cone_candidates(origin, d, centres, radii, reach=reach[:-1])


def test_pseudo_azimuth_rises_with_the_azimuth():
    a = np.linspace(-np.pi, np.pi, 100_001)[:-1]
    p = _pseudo_azimuth(np.cos(a), np.sin(a))
    turn = np.argmin(p)                                                          # azimuth 0: pseudo 0
    np.testing.assert_allclose(a[turn], 0.0, atol=1e-4)
    assert np.all(np.diff(np.roll(p, -turn)) > 0) and p.min() >= 0 and p.max() < 4
    np.testing.assert_allclose(_pseudo_azimuth([1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0]), [0, 1, 2, 3])
    assert AZIMUTH_BINS % 4 == 0


def test_runs_of_shared_origins_are_culled_run_by_run(traffic_world):
    """A camera-rig-like bundle (a few origins, each shared by a run of rays) gives the hits of
    casting each run alone and of the numpy reference, which culls nothing."""
    city, traffic, world = traffic_world
    rng = np.random.default_rng(4)
    t = 29.0
    st = traffic.states(t)
    origins, directions = [], []
    for pose in sweep_poses(traffic, t, rng, 5):
        aim = st.position[rng.integers(len(st.position), size=120)] + rng.normal([0, 0, 0.8], 1.0, (120, 3))
        directions.append(np.concatenate([aim - pose.position, rng.normal(size=(30, 3))]))
        origins.append(np.broadcast_to(pose.position, (150, 3)))
    o, d = np.concatenate(origins), np.concatenate(directions)
    whole = world.cast(o, d, 150.0, t)
    parts = [world.cast(oo, dd, 150.0, t) for oo, dd in zip(origins, directions)]
    for got, *want in zip(whole, *parts):
        assert np.asarray(got).tobytes() == np.concatenate(want).tobytes()
    ref = world.cast(o, d, 150.0, t, backend="numpy")
    np.testing.assert_array_equal(whole.hit, ref.hit)
    np.testing.assert_array_equal(whole.instance, ref.instance)
    assert (whole.triangle >= world.num_static_triangles).sum() > 50
