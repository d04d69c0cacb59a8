"""GazeboOccWorldDataset on tiny synthetic recordings: sample layout, windows, formats, batching."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.labels import FREE


@pytest.fixture
def five_drones(tmp_path, synth):
    for i in range(5):
        synth.write(tmp_path, f"drone_{i}", 14)
    return tmp_path


def test_sample_layout_shapes_and_dtypes(five_drones, synth):
    ds = GazeboOccWorldDataset(five_drones, synth.config(split="train", load_masks=True))
    s = ds[0]
    x, y, z = synth.grid.shape
    assert s["history_occupancy"].shape == (4, x, y, z) and s["history_occupancy"].dtype == np.uint8
    assert s["future_occupancy"].shape == (6, x, y, z) and s["future_occupancy"].dtype == np.uint8
    assert s["history_poses"].shape == (4, 13) and s["future_poses"].shape == (6, 13)
    assert s["history_poses"].dtype == np.float32
    assert s["rel_poses"].shape == (10, 2) and s["gt_mode"].shape == (10, 3) and s["rel_motion"].shape == (10, 4)
    assert s["history_mask_lidar"].dtype == bool and s["future_mask_camera"].shape == (6, x, y, z)
    assert s["agent_type"] == "drone" and s["session"].startswith("drone_")
    assert s["frames"].tolist() == list(range(1, 11)) and s["frame_rate_hz"] == 2.0
    np.testing.assert_allclose(s["timestamps"], np.arange(10) * 0.5)
    for arr in (s["history_occupancy"], s["future_occupancy"]):
        assert arr.dtype != np.float32
    assert set(s) == ds.sample_keys


def test_history_and_future_are_the_window_frames_in_order(five_drones, synth):
    ds = GazeboOccWorldDataset(five_drones, synth.config(frame_skip=2))
    for i in range(len(ds)):
        s = ds[i]
        grids = np.concatenate([s["history_occupancy"], s["future_occupancy"]])
        assert [synth.marker(g) for g in grids] == [f % 8 for f in s["frames"]]
        assert np.array_equal(grids[-1], synth.frame_grid(int(s["frames"][-1])))
    starts = sorted({(ds[i]["session"], int(ds[i]["frames"][0])) for i in range(len(ds))})
    assert [f for name, f in starts if name == starts[0][0]] == [1, 3, 5]   # 14 frames, windows of 10, skip 2


def test_frame_stride_takes_every_other_recorded_frame(tmp_path, synth):
    synth.write(tmp_path, "drone_a", 25, rate=4.0)
    ds = GazeboOccWorldDataset(tmp_path, synth.config(frame_stride=2, split_fallback="time", train_ratio=1.0,
                                                      val_ratio=0.0, test_ratio=0.0))
    s = ds[0]
    assert s["frames"].tolist() == list(range(1, 21, 2))
    assert s["frame_rate_hz"] == 2.0
    # 2 m/s for 0.5 s between window frames: 1 m forward per step
    np.testing.assert_allclose(s["rel_poses"][:-1], [[0.0, 1.0]] * 9, atol=1e-5)


def test_pose_13d_files_without_manifest(tmp_path, synth):
    synth.write(tmp_path, "rover_old", 12, manifest=False, pose_format="13d", grid_json=False, speed=4.0, yaw0=1.0)
    ds = GazeboOccWorldDataset(tmp_path, synth.config(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0))
    s = ds[0]
    assert s["agent_type"] == "rover"                     # from the folder prefix
    assert s["frame_rate_hz"] == pytest.approx(2.0)       # from the timestamps
    np.testing.assert_allclose(s["rel_poses"][:5], [[0.0, 2.0]] * 5, atol=1e-5)
    yaw = np.arctan2(2 * (s["history_poses"][:, 3] * s["history_poses"][:, 6]), 1 - 2 * s["history_poses"][:, 6] ** 2)
    np.testing.assert_allclose(yaw, 1.0, atol=1e-5)


def test_binary_occupancy_key_becomes_class_ids(tmp_path, synth):
    synth.write(tmp_path, "drone_bin", 10, occ_key="occupancy")
    ds = GazeboOccWorldDataset(tmp_path, synth.config(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0))
    grid = ds[0]["history_occupancy"][0]
    expected = synth.frame_grid(1)
    assert set(np.unique(grid)) == {0, FREE}
    assert np.array_equal(grid != FREE, expected != FREE)


def test_agent_type_selects_sequences(tmp_path, synth):
    for i in range(3):
        synth.write(tmp_path, f"drone_{i}", 12)
        synth.write(tmp_path, f"rover_{i}", 12, agent="rover")
    both = GazeboOccWorldDataset(tmp_path, synth.config())
    drones = GazeboOccWorldDataset(tmp_path, synth.config(agent_type="drone"))
    assert {r.agent_type for r in drones.records} == {"drone"}
    assert {r.agent_type for r in both.records} == {"drone", "rover"}
    assert {r.name for r in drones.records} <= {r.name for r in both.records}   # same split for the drones


def test_collate_stacks_to_batch_and_dataloader_workers(five_drones, synth):
    ds = GazeboOccWorldDataset(five_drones, synth.config(load_masks=True))
    batch = collate_fn([ds[0], ds[1]])
    x, y, z = synth.grid.shape
    assert batch["history_occupancy"].shape == (2, 4, x, y, z) and batch["history_occupancy"].dtype == torch.uint8
    assert batch["rel_poses"].shape == (2, 10, 2) and batch["gt_mode"].dtype == torch.float32
    assert batch["future_mask_lidar"].dtype == torch.bool
    assert batch["session"] == [ds[0]["session"], ds[1]["session"]]
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_fn)
    seen = sum(b["history_occupancy"].shape[0] for b in loader)
    assert seen == len(ds)


def test_collate_refuses_samples_with_different_fields(five_drones, synth):
    a = GazeboOccWorldDataset(five_drones, synth.config())[0]
    b = GazeboOccWorldDataset(five_drones, synth.config(load_masks=True))[0]
    with pytest.raises(ValueError, match="different keys"):
        collate_fn([a, b])


def test_lidar_is_padded_thinned_and_counted(tmp_path, synth):
    synth.write(tmp_path, "drone_l", 10, lidar=True)
    cfg = dict(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0, load_lidar=True, history_frames=2, future_frames=2)
    s = GazeboOccWorldDataset(tmp_path, synth.config(**cfg, max_points=55))[0]
    assert s["lidar"].shape == (4, 55, 4) and s["lidar"].dtype == np.float32
    assert s["lidar_num_points"].tolist() == [50, 51, 52, 53]
    assert np.all(s["lidar"][0, 50:] == 0)
    raw = np.load(tmp_path / "drone_l" / "lidar" / "000001_LIDAR.npy")
    np.testing.assert_array_equal(s["lidar"][0, :50], raw[:, :4])
    thin = GazeboOccWorldDataset(tmp_path, synth.config(**cfg, max_points=10))[0]
    assert thin["lidar_num_points"].tolist() == [10] * 4
    np.testing.assert_array_equal(thin["lidar"][0, 0], raw[0, :4])   # even thinning keeps the first point


def test_images_resized_with_matching_intrinsics(tmp_path, synth):
    synth.write(tmp_path, "drone_c", 10, images=True, image_size=(16, 12))
    cfg = synth.config(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0, load_images=True, history_frames=1,
                       future_frames=1, image_size=(32, 24))
    s = GazeboOccWorldDataset(tmp_path, cfg)[0]
    assert s["images"].shape == (2, 6, 24, 32, 3) and s["images"].dtype == np.uint8
    assert s["camera_names"][2] == "CAM_FRONT_LEFT"
    manifest = json.loads((tmp_path / "drone_c" / "sequence.json").read_text())
    k = np.array(manifest["sensors"]["CAM_FRONT"]["K"])
    np.testing.assert_allclose(s["cam_intrinsics"][0, 0, 0], 2 * k[0, 0])
    np.testing.assert_allclose(s["cam_intrinsics"][0, 0, 2], (k[0, 2] + 0.5) * 2 - 0.5)
    np.testing.assert_allclose(s["cam_extrinsics"][1, 0], manifest["sensors"]["CAM_FRONT"]["T_body_sensor"], atol=1e-6)


def test_frame_cache_changes_nothing_but_reads(five_drones, synth):
    cached = GazeboOccWorldDataset(five_drones, synth.config(frame_cache=4))
    plain = GazeboOccWorldDataset(five_drones, synth.config(frame_cache=0))
    for i in list(range(len(plain))) + [0, 2, 1]:
        a, b = cached[i], plain[i]
        assert np.array_equal(a["history_occupancy"], b["history_occupancy"])
        assert np.array_equal(a["future_occupancy"], b["future_occupancy"])
    assert len(cached._cache) <= 4 and len(plain._cache) == 0


def test_sample_memory_is_uint8_grids(five_drones, synth):
    s = GazeboOccWorldDataset(five_drones, synth.config())[0]
    nbytes = sum(v.nbytes for v in s.values() if isinstance(v, np.ndarray))
    grid_bytes = 10 * synth.grid.num_voxels
    assert grid_bytes <= nbytes < grid_bytes + 2000     # the grids at one byte per voxel, plus small arrays
