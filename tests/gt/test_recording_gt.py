"""`scripts/generate_occupancy_gt.py` / `vlwm gt` on real simulator recordings, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.grid import GridSpec
from vlwm.io.occupancy_file import read_frame
from vlwm.labels import FREE
from vlwm.io.frames import Pose, transform_points
from vlwm.sim.jobs import run_jobs
from vlwm.sim.mission_spec import MissionSpec
from vlwm.sim.simulator import SimConfig
from vlwm.sim.traffic_config import TrafficConfig
from vlwm.world.procedural import CityConfig, generate_city

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "generate_occupancy_gt.py"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    scene = generate_city(CityConfig(seed=2, size=220.0))
    scene_path = scene.save(root / "scenes" / "city.npz")
    config = SimConfig(duration_s=1.5, image_size=(64, 36),
                       traffic=TrafficConfig(seed=0, cars=6, buses=1, trucks=1, pedestrians=6, drones=1))
    specs = [MissionSpec(vehicle="drone", size=40, spacing=20, altitude=30),
             MissionSpec(vehicle="rover", pattern="patrol", goals=2)]
    return run_jobs(scene_path, specs, root, config, progress=False)


def run_gt(*args):
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_every_lidar_hit_is_in_an_occupied_voxel(recordings, tmp_path):
    out = run_gt("--input", *recordings, "--output", tmp_path / "processed", "--grid", "auto")
    assert "wrote 8 occupancy frames for 2 sequence(s)" in out
    for seq in recordings:
        occ_dir = tmp_path / "processed" / seq.name / "occupancy"
        grid = json.loads((occ_dir / "grid.json").read_text())
        expected = (200, 200, 121) if seq.name.startswith("drone") else (200, 200, 16)
        assert tuple(grid["shape"]) == expected
        spec = GridSpec(tuple(grid["point_cloud_range"]), tuple(grid["voxel_size"]))
        manifest = json.loads((seq / "sequence.json").read_text())
        t_bl = np.array(manifest["sensors"]["LIDAR"]["T_body_sensor"])
        assert (tmp_path / "processed" / seq.name / "sequence.json").is_file()  # a dataset root by itself
        for i in range(1, 5):
            z = read_frame(occ_dir / f"{i:06d}_occupancy.vlo")
            sem = z["semantics"]
            assert sem.shape == expected and sem.dtype == np.uint8
            np.testing.assert_array_equal(z["occupancy"], (sem != FREE).astype(np.uint8))
            assert set(np.unique(z["mask_lidar"])) <= {0, 1} and z["mask_lidar"].any()
            pose_doc = json.loads((seq / "poses" / f"{i:06d}.json").read_text())
            pose = Pose.from_json(pose_doc)
            frame = GridFrame.from_pose(pose, pose_doc["ground_z"])
            np.testing.assert_allclose(z["T_world_grid"], frame.T_world_grid(), atol=1e-9)
            pts = np.load(seq / "lidar" / f"{i:06d}_LIDAR.npy")
            world = transform_points(pose.matrix() @ t_bl, pts[:, :3])
            grid_pts = transform_points(np.linalg.inv(frame.T_world_grid()), world)
            idx, inside = spec.index_of(grid_pts)
            assert inside.sum() > 100
            occupied = sem[tuple(idx[inside].T)] != FREE
            assert occupied.mean() >= 0.99, f"{seq.name} frame {i}: {occupied.mean():.3f}"
            # Each lidar return's label is the voxel's label for nearly all points.
            same = sem[tuple(idx[inside].T)] == pts[inside, 4].astype(np.uint8)
            assert same.mean() > 0.9


def test_reruns_skip_finished_frames_and_bad_files_are_reported(recordings, tmp_path):
    seq = recordings[0]
    run_gt("--input", seq, "--output", tmp_path / "p", "--no-camera-mask")
    again = run_gt("--input", seq, "--output", tmp_path / "p", "--no-camera-mask")
    assert "0 frames written, 4 already done" in again

    # A corrupt lidar file and a missing pose file: reported with file and frame, the rest completes.
    broken = tmp_path / "broken" / seq.name
    import shutil

    shutil.copytree(seq, broken)
    (broken / "lidar" / "000002_LIDAR.npy").write_bytes(b"\x93NUMPY garbage")
    (broken / "poses" / "000003.json").unlink()
    out = run_gt("--input", broken, "--source", "lidar", "--no-camera-mask")
    assert "2 frames written" in out and "2 failed" in out
    assert "000002_LIDAR.npy" in out and "frame 2" in out
    assert "000003.json" in out and "frame 3" in out
    written = sorted(p.name for p in (broken / "occupancy").glob("*_occupancy.*"))
    assert written == ["000001_occupancy.vlo", "000004_occupancy.vlo"]


def test_invalid_custom_grid_suggests_ranges(recordings):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--input", str(recordings[0]), "--point-cloud-range",
                           "-40", "-40", "-2", "40", "40", "150", "--voxel-size", "0.4", "0.4", "1.25"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "121.6" in proc.stderr and "149.25" in proc.stderr


def test_default_grid_feeds_the_dataset_for_both_vehicles(recordings, tmp_path):
    """The guide's flow: ground truth with the defaults, then the dataset with its defaults' grid."""
    from vlwm.data.config import DatasetConfig
    from vlwm.data.dataset import GazeboOccWorldDataset

    run_gt("--input", *recordings, "--output", tmp_path / "processed", "--no-camera-mask")
    cfg = DatasetConfig(history_frames=2, future_frames=2, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    ds = GazeboOccWorldDataset(tmp_path / "processed", cfg)
    assert {s["agent_type"] for s in (ds[i] for i in range(len(ds)))} == {"drone", "rover"}
    assert ds[0]["history_occupancy"].shape == (2, 200, 200, 121)
