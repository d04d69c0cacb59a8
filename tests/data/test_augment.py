"""Augmentations: one draw per sample, geometry consistent between grids, poses, trajectory, sensors."""

import copy

import numpy as np
import pytest
import torch

from vlwm.data.augment import PointCloudNoise, RandomFlip, RandomRotate, parse_transform
from vlwm.data.dataset import GazeboOccWorldDataset
from vlwm.data.trajectory import pose13_rotations, pose13_yaws, rel_motion
from vlwm.gt.grid import GridSpec
from vlwm.labels import FREE

ALL_TRAIN = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)


@pytest.fixture
def sample(tmp_path, synth):
    synth.write(tmp_path, "drone_turn", 16, turn_rate=0.35, climb=0.3, speed=3.0, lidar=True, images=True)
    cfg = synth.config(load_masks=True, load_lidar=True, load_images=True, max_points=80, **ALL_TRAIN)
    return GazeboOccWorldDataset(tmp_path, cfg)[0]


def all_poses(s):
    return np.concatenate([s["history_poses"], s["future_poses"]]).astype(np.float64)


def building_side(grid):
    """+1 if the class-15 building lies at y > 0 (left), -1 if right."""
    ys = np.nonzero(grid == 15)[1]
    return int(np.sign(ys.mean() - (grid.shape[1] - 1) / 2))


def test_flip_mirrors_every_frame_and_everything_with_it(sample, synth):
    s = RandomFlip(1.0, synth.grid)(copy.deepcopy(sample), np.random.default_rng(0))
    for key in ("history_occupancy", "future_occupancy", "history_mask_camera", "future_mask_lidar"):
        np.testing.assert_array_equal(s[key], sample[key][:, :, ::-1, :])
    assert all(building_side(g) == -1 for g in np.concatenate([s["history_occupancy"], s["future_occupancy"]]))
    # the trajectory re-derived from the mirrored poses is the mirrored trajectory
    recomputed, _ = rel_motion(all_poses(s), np.ones(10, bool))
    np.testing.assert_allclose(recomputed[:-1], s["rel_motion"][:-1], atol=1e-4)
    np.testing.assert_allclose(s["rel_motion"][:, [0, 3]], -sample["rel_motion"][:, [0, 3]])
    np.testing.assert_array_equal(s["gt_mode"], sample["gt_mode"][:, [1, 0, 2]])
    assert sample["gt_mode"][0].tolist() == [0, 1, 0] and s["gt_mode"][0].tolist() == [1, 0, 0]   # left -> right
    np.testing.assert_allclose(s["future_poses"][:, 12], -sample["future_poses"][:, 12])       # yaw rate
    ref = all_poses(sample)[3]
    np.testing.assert_allclose(all_poses(s)[3, :3], ref[:3], atol=1e-5)                          # mirror plane
    twice = RandomFlip(1.0, synth.grid)(copy.deepcopy(s), np.random.default_rng(0))
    np.testing.assert_array_equal(twice["history_occupancy"], sample["history_occupancy"])
    np.testing.assert_allclose(all_poses(twice)[:, :3], all_poses(sample)[:, :3], atol=1e-4)
    np.testing.assert_allclose(pose13_rotations(all_poses(twice)), pose13_rotations(all_poses(sample)), atol=1e-5)


def test_flip_lidar_and_cameras(sample, synth):
    s = RandomFlip(1.0, synth.grid)(copy.deepcopy(sample), np.random.default_rng(0))
    k = int(sample["lidar_num_points"][0])
    np.testing.assert_allclose(s["lidar"][0, :k, :3], sample["lidar"][0, :k, :3] * [1, -1, 1], atol=1e-6)
    names = sample["camera_names"]
    left, right = names.index("CAM_FRONT_LEFT"), names.index("CAM_FRONT_RIGHT")
    np.testing.assert_array_equal(s["images"][:, left], sample["images"][:, right, :, ::-1])
    # a body point seen by the right camera at (u, v) is seen mirrored by the new left slot at (W - 1 - u, v)
    p_body = np.array([3.0, -2.5, 0.4, 1.0])
    w = sample["images"].shape[3]

    def project(k_, t_, p):
        c = np.linalg.inv(t_.astype(np.float64)) @ p
        uvw = k_.astype(np.float64) @ c[:3]
        return uvw[:2] / uvw[2]

    u, v = project(sample["cam_intrinsics"][right], sample["cam_extrinsics"][0, right], p_body)
    u2, v2 = project(s["cam_intrinsics"][left], s["cam_extrinsics"][0, left], p_body * [1, -1, 1, 1])
    np.testing.assert_allclose([u2, v2], [w - 1 - u, v], atol=1e-3)


def test_rotate_quarter_turn_is_exact_on_a_square_grid(sample, synth):
    s = RandomRotate([90, 90], synth.grid)(copy.deepcopy(sample), np.random.default_rng(0))
    expected = sample["history_occupancy"][:, :, ::-1].transpose(0, 2, 1, 3)   # out[i, j] = in[j, N - 1 - i]
    np.testing.assert_array_equal(s["history_occupancy"], expected)
    np.testing.assert_allclose(pose13_yaws(all_poses(s)), pose13_yaws(all_poses(sample)) - np.pi / 2, atol=1e-5)
    np.testing.assert_allclose(all_poses(s)[:, :3], all_poses(sample)[:, :3])
    recomputed, _ = rel_motion(all_poses(s), np.ones(10, bool))
    np.testing.assert_allclose(recomputed[:-1], s["rel_motion"][:-1], atol=1e-4)
    np.testing.assert_allclose(s["rel_poses"], s["rel_motion"][:, :2])


def test_small_rotation_keeps_the_scene_and_fills_the_corners_free(sample, synth):
    rot = RandomRotate([5, 5], synth.grid)
    s = rot(copy.deepcopy(sample), np.random.default_rng(0))
    a, b = sample["future_occupancy"], s["future_occupancy"]
    assert 0.9 < np.sum(b == 15) / np.sum(a == 15) < 1.1
    i, j, inside = rot.index_map(np.deg2rad(5))
    assert not inside.all() and np.all(b[:, ~inside] == FREE) and np.all(~s["future_mask_lidar"][:, ~inside])
    k = int(sample["lidar_num_points"][2])
    c, sn = np.cos(np.deg2rad(5)), np.sin(np.deg2rad(5))
    rotated = sample["lidar"][2, :k, :2] @ np.array([[c, -sn], [sn, c]]).T   # level drone: about z
    np.testing.assert_allclose(s["lidar"][2, :k, :2], rotated, atol=1e-4)


def test_one_draw_per_sample(tmp_path, synth):
    synth.write(tmp_path, "drone_a", 16)
    ds = GazeboOccWorldDataset(tmp_path, synth.config(transform={"RandomFlip": {"prob": 0.5}}, **ALL_TRAIN))
    torch.manual_seed(0)
    sides = []
    for i in range(12):
        s = ds[i % len(ds)]
        frame_sides = {building_side(g) for g in np.concatenate([s["history_occupancy"], s["future_occupancy"]])}
        assert len(frame_sides) == 1
        sides.append(frame_sides.pop())
    assert set(sides) == {-1, 1}
    torch.manual_seed(0)
    again = [building_side(ds[i % len(ds)]["history_occupancy"][0]) for i in range(12)]
    assert again == sides                                 # torch's seed drives the draws


def test_point_cloud_noise(sample):
    rng = np.random.default_rng(1)
    s = PointCloudNoise(0.05)(copy.deepcopy(sample), rng)
    k = sample["lidar_num_points"]
    diffs = np.concatenate([(s["lidar"][t, :k[t], :3] - sample["lidar"][t, :k[t], :3]).ravel() for t in range(10)])
    assert abs(diffs.std() - 0.05) < 0.005 and abs(diffs.mean()) < 0.005
    assert np.all(s["lidar"][0, k[0]:] == 0)                                # padding untouched
    np.testing.assert_array_equal(s["lidar"][..., 3], sample["lidar"][..., 3])   # intensity untouched


def test_parse_errors(synth):
    with pytest.raises(ValueError, match="unknown augmentation 'RandomZoom'"):
        parse_transform({"RandomZoom": {"scale": 2}}, synth.grid)
    with pytest.raises(ValueError, match=r"RandomFlip: parameters must be exactly \['prob'\]"):
        parse_transform({"RandomFlip": {"p": 0.5}}, synth.grid)
    with pytest.raises(ValueError, match="symmetric in y"):
        parse_transform({"RandomFlip": {"prob": 0.5}}, GridSpec((-4, -2, -1, 4, 6, 2.2), (0.4, 0.4, 0.4)))
    with pytest.raises(ValueError, match="unknown augmentation"):
        synth.config(transform={"ColorJitter": {}})
    t = parse_transform({"RandomFlip": {"prob": 0.5}, "RandomRotate": {"angle": [-5, 5]},
                         "PointCloudNoise": {"std": 0.02}}, synth.grid)
    assert [type(x).__name__ for x in t.transforms] == ["RandomFlip", "RandomRotate", "PointCloudNoise"]
