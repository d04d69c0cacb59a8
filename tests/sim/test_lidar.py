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
