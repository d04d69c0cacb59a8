"""Ray traversal: the DDA visits exactly the voxels a segment passes through, camera rays stop at the
first occupied voxel, and the masks follow the sensors' geometry."""

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.grid import GridSpec
from vlwm.gt.visibility import (CameraRays, PinholeCamera, camera_rays, camera_visibility, lidar_visibility,
                                traverse, traversed_reference)
from vlwm.labels import FREE
from vlwm.sim.camera import CameraConfig
from vlwm.io.frames import Pose

SHAPE = (20, 16, 10)
EPS = 1e-9


def walk(o, e, sem=None):
    m = np.zeros(SHAPE, np.uint8)
    traverse(m, np.eye(4), np.asarray(o, float)[None], np.asarray(e, float)[None], sem, FREE)
    return {tuple(v) for v in np.argwhere(m)}


def test_dda_matches_the_reference_on_random_segments(rng):
    """Every voxel the segment crosses with positive length is visited, and nothing it does not meet."""
    for _ in range(400):
        o, e = rng.uniform(-6, 26, 3), rng.uniform(-6, 26, 3)
        got = walk(o, e)
        idx, _, length = traversed_reference(o, e, SHAPE)
        assert {tuple(v) for v in idx[length > EPS]} <= got <= {tuple(v) for v in idx}


def test_axis_parallel_and_degenerate_segments():
    assert walk([0.5, 0.5, 0.5], [5.5, 0.5, 0.5]) == {(i, 0, 0) for i in range(6)}
    assert walk([3.2, 4.7, 2.1], [3.2, 4.7, 2.1]) == {(3, 4, 2)}            # a point: its own voxel
    assert walk([-5, -5, -5], [-1, -2, -3]) == set()                      # entirely outside
    assert walk([30, 8.5, 5.5], [-10, 8.5, 5.5]) == {(i, 8, 5) for i in range(20)}  # crosses the whole grid


def test_camera_walk_stops_at_the_first_occupied_voxel(rng):
    for _ in range(200):
        sem = np.where(rng.random(SHAPE) < 0.03, 4, FREE).astype(np.uint8)
        o, e = rng.uniform(-3, 23, 3), rng.uniform(-3, 23, 3)
        got = walk(o, e, sem)
        idx, enter, length = traversed_reference(o, e, SHAPE)
        keep = length > EPS
        want = set()
        for v in idx[keep][np.argsort(enter[keep])]:
            want.add(tuple(v))
            if sem[tuple(v)] != FREE:
                break
        assert got == want


@pytest.fixture
def spec():
    return GridSpec((-5.0, -4.0, -1.0, 5.0, 4.0, 4.0), (0.5, 0.5, 0.5))


def test_lidar_mask_is_the_voxels_between_sensor_and_return(spec):
    frame = GridFrame(10.0, 20.0, 1.0, np.pi / 2)                         # facing north, ground at z = 1
    pose = Pose.from_xyz_rpy(0.0, (10.13, 20.21, 3.07), (0.0, 0.0, np.pi / 2))
    hit = np.array([[3.0, 0.1, -2.05]])                                  # 3 m ahead, near the ground (sensor frame)
    mask = lidar_visibility(spec, frame, pose.matrix(), hit)
    start, end = frame.to_grid(np.array([pose.position, (pose.matrix() @ np.r_[hit[0], 1.0])[:3]]))
    np.testing.assert_allclose(start, [0.21, -0.13, 2.07], atol=1e-12)   # level grid: only the yaw turns it
    ray = np.linspace(start, end, 5000)
    idx, inside = spec.index_of(ray)
    assert {tuple(v) for v in np.argwhere(mask)} == {tuple(i) for i in idx[inside]}


def test_camera_rays_follow_intrinsics_mounts_and_depth():
    cfg = CameraConfig("CAM_FRONT", width=64, height=48, fov_x_deg=90.0, mount_xyz=(0.5, 0.0, 1.5),
                       mount_rpy=(0.0, 0.3, 0.0))
    cam = PinholeCamera.from_config(cfg)
    pose = Pose.from_xyz_rpy(0.0, (1.0, 2.0, 0.0), (0.0, 0.0, np.pi))    # facing west
    rays = camera_rays(pose, [cam], subsample=1)
    assert rays.origins.shape == (64 * 48, 3)
    np.testing.assert_allclose(np.linalg.norm(rays.directions, axis=1), 1.0)
    np.testing.assert_allclose(rays.origins[0], [0.5, 2.0, 1.5])
    centre = rays.directions.reshape(48, 64, 3)[23:25, 31:33].mean((0, 1))
    np.testing.assert_allclose(centre / np.linalg.norm(centre), [-np.cos(0.3), 0.0, -np.sin(0.3)], atol=0.02)
    np.testing.assert_allclose(rays.ranges, cfg.max_range)
    depth = np.full((48, 64), 5000, np.uint16)                           # 5 m z-depth everywhere ...
    depth[:, :10] = 0                                                    # ... but no depth on the left
    rays = camera_rays(pose, [cam], subsample=4, depth_mm={"CAM_FRONT": depth})
    assert rays.origins.shape == (16 * 12, 3)
    r = rays.ranges.reshape(12, 16)
    v, u = np.mgrid[2:48:4, 2:64:4]
    K = cfg.K()
    slant = np.sqrt(((u - K[0, 2]) / K[0, 0]) ** 2 + ((v - K[1, 2]) / K[1, 1]) ** 2 + 1)   # range / z-depth
    assert np.all(r[:, :2] == cfg.max_range)                             # columns u = 2, 6 have no depth
    np.testing.assert_allclose(r[:, 2:], 5.0 * slant[:, 2:])


def test_camera_calibration_entry_and_errors():
    cfg = CameraConfig("CAM_BACK", width=32, height=24)
    entry = {"K": cfg.K().tolist(), "T_body_sensor": cfg.T_body_sensor().tolist(), "width": 32, "height": 24}
    cam = PinholeCamera.from_calibration("CAM_BACK", entry)
    np.testing.assert_allclose(cam.K, cfg.K())
    with pytest.raises(ValueError, match="camera CAM_BACK: calibration needs K"):
        PinholeCamera.from_calibration("CAM_BACK", {"width": 32})


def test_camera_mask_stops_at_a_wall(spec):
    frame = GridFrame(0.0, 0.0, 0.0, 0.0)
    sem = np.full(spec.shape, FREE, np.uint8)
    sem[14, :, :] = 15                                                   # a wall at grid x in [2, 2.5]
    n = 50
    rays = CameraRays(np.tile([-4.0, 0.0, 1.0], (n, 1)),
                      np.column_stack([np.ones(n), np.linspace(-0.5, 0.5, n), np.zeros(n)]) / np.sqrt(1.0625),
                      np.full(n, 100.0))
    rays = rays._replace(directions=rays.directions / np.linalg.norm(rays.directions, axis=1, keepdims=True))
    mask = camera_visibility(spec, frame, sem, FREE, rays)
    assert mask[14].sum() > 0 and mask[15:].sum() == 0 and mask[:14].sum() > 0
