"""Occ3D-nuScenes in OccWorld's layout, mixing with ours by weight, and our export to OccWorld's format."""

import os
import pickle
import pickletools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset, collate_fn
from vlwm.data.mixing import ConcatDataset, build_dataset
from vlwm.data.occ3d import Occ3DConfig, Occ3DNuScenesDataset, load_info_pickle
from vlwm.data.occworld_export import export_occworld, info_pickle_name
from vlwm.gt.grid import OCC3D
from vlwm.labels import FREE


def write_occ3d(root, scenes, grid_shape, seed=0):
    """A synthetic Occ3D-nuScenes folder: gts/<scene>/<token>/labels.npz and a reference-style info pickle."""
    rng = np.random.default_rng(seed)
    infos = {}
    for s, n in enumerate(scenes):
        name = f"scene-{s:04d}"
        frames = []
        for i in range(n):
            token = f"tok{s}_{i:03d}"
            sem = np.full(grid_shape, FREE, np.uint8)
            sem[:, :, 1] = 11
            x0, y0 = rng.integers(0, grid_shape[0] - 3, 2)
            sem[x0:x0 + 3, y0:y0 + 3, 2:5] = rng.integers(0, 17)
            cam = np.zeros(grid_shape, np.uint8)
            cam[: rng.integers(1, grid_shape[0])] = 1
            d = root / "gts" / name / token
            d.mkdir(parents=True)
            np.savez_compressed(d / "labels.npz", semantics=sem, mask_lidar=np.ones(grid_shape, np.uint8),
                                mask_camera=cam)
            fut = np.stack([rng.normal(0, 0.2, 6), rng.uniform(1, 4, 6)], 1)
            frames.append({"token": token, "gt_ego_fut_trajs": fut, "gt_ego_fut_masks": np.ones(6),
                           "pose_mode": np.eye(3)[rng.integers(0, 3)],
                           "ego2global_translation": [float(i), 2.0 * i, 0.0],
                           "ego2global_rotation": [np.cos(0.05 * i), 0.0, 0.0, np.sin(0.05 * i)],
                           "timestamp": 1_000_000 * i // 2})
        infos[name] = frames
    path = root / "infos_train.pkl"
    path.write_bytes(pickle.dumps({"infos": infos, "metadata": {"version": "v1.0"}}))
    return path


def test_occ3d_reader_takes_rel_poses_and_modes_from_the_infos_as_the_reference(tmp_path):
    info = write_occ3d(tmp_path, [14, 11], OCC3D.shape)
    ds = Occ3DNuScenesDataset(tmp_path, info, Occ3DConfig(load_masks=True))
    assert len(ds) == 5 + 2
    infos = load_info_pickle(info)["infos"]["scene-0000"]
    s = ds[1]
    assert s["history_occupancy"].shape == (4, 200, 200, 16) and s["history_occupancy"].dtype == np.uint8
    labels = np.load(tmp_path / "gts" / "scene-0000" / "tok0_001" / "labels.npz")
    np.testing.assert_array_equal(s["history_occupancy"][0], labels["semantics"])
    np.testing.assert_array_equal(s["history_mask_camera"][0], labels["mask_camera"].astype(bool))
    np.testing.assert_allclose(s["rel_poses"], [infos[i]["gt_ego_fut_trajs"][0] for i in range(1, 11)], rtol=1e-6)
    np.testing.assert_array_equal(s["gt_mode"], [infos[i]["pose_mode"] for i in range(1, 11)])
    np.testing.assert_allclose(s["timestamps"], np.arange(1, 11) * 0.5)
    np.testing.assert_allclose(s["rel_motion"][:-1, 3], 0.1, atol=1e-6)          # yaw steps of 0.1 rad
    assert s["agent_type"] == "car" and s["session"] == "scene-0000"
    assert set(s) == ds.sample_keys


def test_info_pickles_are_loaded_safely(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo owned > owned.txt",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"infos": {"s": [Evil()]}}))
    with pytest.raises(ValueError, match=r"refusing to load (posix|os|nt)\.system"):
        load_info_pickle(path)
    assert not (tmp_path / "owned.txt").exists()
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected"):
        load_info_pickle(tmp_path / "list.pkl")


@pytest.fixture
def mixed(tmp_path, synth):
    info = write_occ3d(tmp_path / "nuscenes", [14, 13], synth.grid.shape)
    for i in range(3):
        synth.write(tmp_path / "tokyo", f"drone_{i}", 14)
    grid = dict(point_cloud_range=synth.grid.point_cloud_range, voxel_size=synth.grid.voxel_size)
    return tmp_path, info, grid


def test_weighted_mixing_and_batches(mixed, synth):
    tmp_path, info, grid = mixed
    nus = Occ3DNuScenesDataset(tmp_path / "nuscenes", info, Occ3DConfig(**grid))
    tokyo = GazeboOccWorldDataset(tmp_path / "tokyo", synth.config())
    mix = ConcatDataset([nus, tokyo], sample_weights=[0.7, 0.3])
    assert len(mix) == len(nus) + len(tokyo) and len(nus) == 9 and len(tokyo) == 5
    draws = torch.tensor(list(mix.sampler(num_samples=20000, generator=torch.Generator().manual_seed(0))))
    share = (draws < len(nus)).double().mean().item()
    assert abs(share - 0.7) < 0.015                       # 70 % nuScenes although it has 64 % of the windows
    loader = DataLoader(mix, batch_size=4, sampler=mix.sampler(num_samples=8, generator=torch.Generator().manual_seed(1)),
                        collate_fn=collate_fn)
    batch = next(iter(loader))
    assert batch["history_occupancy"].shape == (4, 4, *synth.grid.shape)
    assert set(batch["agent_type"]) <= {"car", "drone"}


def test_mixing_refuses_incompatible_datasets(mixed, synth, tmp_path):
    root, info, grid = mixed
    nus = Occ3DNuScenesDataset(root / "nuscenes", info, Occ3DConfig(**grid))
    tokyo = GazeboOccWorldDataset(root / "tokyo", synth.config(history_frames=3, future_frames=7))
    with pytest.raises(ValueError, match="cannot be stacked"):
        ConcatDataset([nus, tokyo])
    masked = GazeboOccWorldDataset(root / "tokyo", synth.config(load_masks=True))
    with pytest.raises(ValueError, match="different fields"):
        ConcatDataset([nus, masked])
    with pytest.raises(ValueError, match="sample_weights"):
        ConcatDataset([nus, GazeboOccWorldDataset(root / "tokyo", synth.config())], [0.7])


def test_build_dataset_from_the_guides_config_dict(mixed):
    root, info, grid = mixed
    grid = {k: list(v) for k, v in grid.items()}
    cfg = dict(type="ConcatDataset", sample_weights=[0.7, 0.3], datasets=[
        dict(type="NuScenesDataset", data_root=str(root / "nuscenes"), info_path=str(info), config=grid),
        dict(type="GazeboOccWorldDataset", data_root=str(root / "tokyo"),
             config=dict(history_frames=4, future_frames=6, agent_type="both", split="train", **grid))])
    mix = build_dataset(cfg)
    assert isinstance(mix, ConcatDataset) and np.allclose(mix.sample_weights, [0.7, 0.3])
    cfg["datasets"][1]["config"]["histroy_frames"] = 4
    with pytest.raises(ValueError, match=r"unknown keys \['histroy_frames'\]"):
        build_dataset(cfg)
    with pytest.raises(ValueError, match="unknown dataset type 'Foo'"):
        build_dataset({"type": "Foo"})


def test_export_round_trips_through_the_occ3d_reader(tmp_path, synth):
    for i, turn in enumerate((0.0, 0.4, -0.4)):
        synth.write(tmp_path / "tokyo", f"drone_{i}", 14, turn_rate=turn, speed=5.0)
    cfg = synth.config(train_ratio=1 / 3, val_ratio=1 / 3, test_ratio=1 / 3)
    report = export_occworld(tmp_path / "tokyo", tmp_path / "occworld", cfg, min_scene_frames=10)
    assert [len(report.scenes[s]) for s in ("train", "val", "test")] == [1, 1, 1]
    for split in ("train", "val", "test"):
        ours = GazeboOccWorldDataset(tmp_path / "tokyo", DatasetConfig.from_dict({**cfg.to_dict(), "split": split}))
        theirs = Occ3DNuScenesDataset(tmp_path / "occworld", tmp_path / "occworld" / info_pickle_name(split),
                                      Occ3DConfig(point_cloud_range=cfg.point_cloud_range, voxel_size=cfg.voxel_size))
        assert len(ours) == len(theirs) == 5
        for i in range(len(ours)):
            a, b = ours[i], theirs[i]
            np.testing.assert_array_equal(a["history_occupancy"], b["history_occupancy"])
            np.testing.assert_array_equal(a["future_occupancy"], b["future_occupancy"])
            np.testing.assert_allclose(a["rel_poses"], b["rel_poses"], atol=1e-5)
            np.testing.assert_array_equal(a["rel_poses_valid"], b["rel_poses_valid"])
            np.testing.assert_array_equal(a["gt_mode"], b["gt_mode"])
            np.testing.assert_allclose(a["future_offset"], b["future_offset"], atol=1e-4)
            np.testing.assert_allclose(a["history_poses"][:, :7], b["history_poses"][:, :7], atol=1e-5)
            np.testing.assert_allclose(a["timestamps"], b["timestamps"])
    modes = {tuple(GazeboOccWorldDataset(tmp_path / "tokyo", DatasetConfig.from_dict({**cfg.to_dict(), "split": s}))
                   [0]["gt_mode"][0]) for s in ("train", "val", "test")}
    assert modes == {(0, 0, 1), (0, 1, 0), (1, 0, 0)}      # straight, left and right turns


def test_exported_pickle_is_plain_and_readable_by_the_reference_code(tmp_path, synth):
    synth.write(tmp_path / "tokyo", "drone_a", 20)
    cfg = synth.config(train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    report = export_occworld(tmp_path / "tokyo", tmp_path / "out", cfg, min_scene_frames=16)
    raw = report.pickles["train"].read_bytes()
    globals_used = {arg for op, arg, _ in pickletools.genops(raw) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")
                    and isinstance(arg, str) and arg.startswith("numpy")}
    assert globals_used == {"numpy"}                     # numpy.ndarray only: numpy 1.x reads it too
    doc = load_info_pickle(report.pickles["train"])
    scene = doc["infos"]["drone_a"]
    assert len(scene) == 20 and doc["metadata"]["grid"]["shape"] == list(synth.grid.shape)
    # what the reference's dataset does with an info (dataset.py get_meta_data)
    rel_poses = np.array([info["gt_ego_fut_trajs"][0] for info in scene])
    gt_mode = np.array([info["pose_mode"] for info in scene])
    assert rel_poses.shape == (20, 2) and gt_mode.shape == (20, 3)
    cam = scene[0]["cams"]["CAM_FRONT"]
    lidar2cam_r = np.linalg.inv(cam["sensor2lidar_rotation"])
    lidar2cam_t = cam["sensor2lidar_translation"] @ lidar2cam_r.T
    assert cam["cam_intrinsic"].shape == (3, 3) and lidar2cam_t.shape == (3,)
    assert os.path.isfile(tmp_path / "out" / "gts" / "drone_a" / scene[3]["token"] / "labels.npz")
    short = export_occworld(tmp_path / "tokyo", tmp_path / "out2", cfg, min_scene_frames=21)
    assert short.scenes["train"] == [] and "20 keyframes < min_scene_frames 21" in short.left_out[0]
