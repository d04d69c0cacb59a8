"""End to end on a real recording: the simulator flies a drone, the ground-truth stage writes the grids,
the dataset reads them; its ego motion agrees with the grid frames the ground-truth stage placed."""

import json

import numpy as np
import pytest

from vlwm.data.config import DatasetConfig
from vlwm.data.dataset import GazeboOccWorldDataset
from vlwm.gt.frame_gt import GTConfig
from vlwm.gt.grid import GridSpec
from vlwm.gt.recording import generate as generate_gt
from vlwm.io.occupancy_file import read_frame
from vlwm.sim.missions import survey_mission
from vlwm.sim.simulator import SimConfig, record_mission
from vlwm.world.procedural import CityConfig, generate_city

GRID = GridSpec((-20.0, -20.0, -2.0, 20.0, 20.0, 38.0), (0.8, 0.8, 1.0))   # 50 x 50 x 40, quick to voxelise


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    city = generate_city(CityConfig(size=220, seed=2))
    root = tmp_path_factory.mktemp("rec")
    seq = record_mission(city, survey_mission(city, (0.0, 0.0), size=40.0, spacing=20.0, altitude=8.0), root,
                         SimConfig(duration_s=12.0, record_cameras=False, traffic=None), progress=False)
    scene_file = city.save(tmp_path_factory.mktemp("scene") / "city.npz")
    [report] = generate_gt([str(seq)], grid="config", config=GTConfig(grid=GRID, camera_mask=False), scene=scene_file)
    assert report.error is None and not report.failed
    return root, seq


def test_reads_the_ground_truth_stage_output(recording):
    root, seq = recording
    cfg = DatasetConfig(history_frames=2, future_frames=3, point_cloud_range=GRID.point_cloud_range,
                        voxel_size=GRID.voxel_size, load_masks=True, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    ds = GazeboOccWorldDataset(root, cfg)
    assert ds.records[0].issues == [] and len(ds) == 25 - 5 + 1
    s = ds[3]
    z = read_frame(seq / "occupancy" / f"{s['frames'][0]:06d}_occupancy.vlo")
    np.testing.assert_array_equal(s["history_occupancy"][0], z["semantics"])
    np.testing.assert_array_equal(s["history_mask_lidar"][0], z["mask_lidar"].astype(bool))
    pose = json.loads((seq / "poses" / f"{s['frames'][0]:06d}.json").read_text())
    np.testing.assert_allclose(s["history_poses"][0], pose["pose_13d"], rtol=1e-6, atol=1e-6)
    assert s["agent_type"] == "drone" and s["frame_rate_hz"] == 2.0


def test_ego_motion_matches_the_grid_frames(recording):
    """rel_motion[i] = frame i+1's grid origin seen from frame i's grid frame (x right, y forward), and the yaw change."""
    root, seq = recording
    cfg = DatasetConfig(history_frames=4, future_frames=6, point_cloud_range=GRID.point_cloud_range,
                        voxel_size=GRID.voxel_size, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    ds = GazeboOccWorldDataset(root, cfg)
    fastest = 0.0
    for w in range(0, len(ds), 3):
        s = ds[w]
        poses = np.concatenate([s["history_poses"], s["future_poses"]])
        grids = []
        for f in s["frames"]:
            grids.append(read_frame(seq / "occupancy" / f"{f:06d}_occupancy.vlo", ["T_world_grid"])["T_world_grid"])
        for i in range(9):
            a, b = grids[i], grids[i + 1]
            d = np.linalg.inv(a) @ b[:, 3]                   # next origin in this grid frame (x fwd, y left, z up)
            dyaw = np.arctan2(b[1, 0], b[0, 0]) - np.arctan2(a[1, 0], a[0, 0])
            np.testing.assert_allclose(s["rel_motion"][i, :2], [-d[1], d[0]], atol=1e-3)
            np.testing.assert_allclose(s["rel_motion"][i, 3], (dyaw + np.pi) % (2 * np.pi) - np.pi, atol=1e-4)
            np.testing.assert_allclose(s["ego_height"][i], poses[i, 2] - a[2, 3], atol=1e-4)
        fastest = max(fastest, float(np.abs(s["rel_motion"][:, :2]).max()))
    assert fastest > 1.0                                     # the drone flies (metres per 0.5 s step)
