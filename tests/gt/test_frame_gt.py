"""One frame end to end: every lidar return lies in an occupied voxel, drones see the street below
from any altitude, and the files hold what grid.json says they hold."""

import json

import numpy as np
import pytest

from vlwm.gt.ego_frame import GridFrame
from vlwm.gt.frame_gt import (GRID_FILE, OCCUPANCY_KEYS, GTConfig, grid_document, load_occupancy,
                              occupancy_for_frame, occupancy_path, write_grid_json, write_occupancy)
from vlwm.gt.grid import AERIAL, GridSpec
from vlwm.gt.lidar_source import LidarSweep
from vlwm.gt.scene_source import ActorBoxes, SceneVoxelizer
from vlwm.gt.visibility import PinholeCamera, camera_rays
from vlwm.labels import FREE, OCC3D_CLASS_NAMES, OCC3D_ID, CityClass
from vlwm.sim.camera import camera_rig
from vlwm.io.frames import Pose
from vlwm.sim.lidar import LidarConfig, drone_lidar, rover_lidar, scan

ACTORS = ActorBoxes(position=np.array([[3.0, -1.5, 0.0], [-2.0, 2.0, 0.0], [1.0, 5.0, 0.0]]),
                    yaw=np.array([0.3, 1.2, 0.0]), size=np.array([[4.5, 1.8, 1.5], [0.6, 0.6, 1.75], [12.0, 2.5, 3.2]]),
                    semantic=np.array([CityClass.CAR, CityClass.PEDESTRIAN, CityClass.BUS], np.uint8),
                    instance=np.array([100, 101, 102], np.int32))
POSES = [
    ("rover", Pose.from_xyz_rpy(0.0, (-1.0, -0.5, 0.0), (0.0, 0.0, 0.4)), rover_lidar()),
    ("drone", Pose.from_xyz_rpy(0.0, (0.5, 1.0, 9.0), (0.1, -0.08, 2.0)), drone_lidar()),
    ("tilted", Pose.from_xyz_rpy(0.0, (0.0, 0.0, 4.0), (0.0, 0.0, -0.7)),
     LidarConfig(beams=32, columns=1024, fov_up_deg=20.0, fov_down_deg=-40.0, mount_xyz=(0.5, -0.2, 1.0),
                 mount_rpy=(0.2, 0.35, 0.6))),
]


@pytest.fixture(scope="module")
def world(tiny):
    """The tiny city with the actors frozen into it (what the lidar sees), and the static voxelizer."""
    frozen = tiny.build_city(extra_boxes=[(p, s, y, CityClass(c), f"actor_{i}") for p, y, s, c, i in zip(*ACTORS)])
    return frozen, SceneVoxelizer(tiny.scene)


@pytest.mark.parametrize("name,pose,lidar", POSES, ids=[p[0] for p in POSES])
def test_every_lidar_return_falls_in_an_occupied_voxel(world, tiny, name, pose, lidar):
    frozen, vox = world
    sweep = LidarSweep(pose, scan(frozen.cast, pose, lidar), lidar.T_body_sensor())
    frame = GridFrame.from_pose(pose, 0.0)
    occ = occupancy_for_frame(frame, GTConfig(grid=tiny.spec), scene=vox, actors=ACTORS, sweeps=[sweep])
    idx, inside = tiny.spec.index_of(frame.to_grid(sweep.world_points()))
    assert inside.sum() > 1000
    sem = occ.semantics[tuple(idx[inside].T)]
    assert np.mean(sem != FREE) >= 0.99
    labels = sweep.points[inside, 4].astype(np.uint8)
    assert np.mean(sem == labels) > 0.9                                 # and mostly with the class the lidar saw
    assert np.all(occ.mask_lidar[tuple(idx[inside].T)] == 1)            # return voxels are observed


@pytest.mark.parametrize("altitude", [30.0, 150.0])
def test_drones_see_the_ground_and_buildings_below_at_any_altitude(tiny, altitude):
    """The grid hangs from the ground, not the drone: from 30 m and from 150 m (above the grid's top)
    it holds the street and the buildings, and the sensors' rays reach down into it."""
    coarse = GridSpec(AERIAL.point_cloud_range, (2.0, 2.0, 1.25))         # the aerial grid's extent, coarser
    pose = Pose.from_xyz_rpy(0.0, (-25.0, 2.0, altitude), (0.0, 0.05, 0.1))  # 25-30 m west of the buildings
    lidar = drone_lidar()
    sweep = LidarSweep(pose, scan(tiny.scene.cast, pose, lidar), lidar.T_body_sensor())
    cams = [PinholeCamera.from_config(c) for c in camera_rig("drone", 160, 90)]
    occ = occupancy_for_frame(GridFrame.from_pose(pose, 0.0), GTConfig(grid=coarse), scene=SceneVoxelizer(tiny.scene),
                              sweeps=[sweep], cameras=camera_rays(pose, cams, subsample=2))
    ground = np.isin(occ.semantics, [OCC3D_ID["driveable_surface"], OCC3D_ID["terrain"]])
    building = occ.semantics == OCC3D_ID["manmade"]
    assert ground[:, :, 1].mean() > 0.9 and not ground[:, :, 2:].any()  # the street fills layer 1 ([-0.75, 0.5] m)
    # the tallest roof, 8 m, lies on the face between layers 7 and 8: both hold it, none above
    assert building.sum() > 10 and np.argwhere(building)[:, 2].max() == 8
    lidar, camera = occ.mask_lidar.astype(bool), occ.mask_camera.astype(bool)
    assert (lidar & ground).sum() > 50                                   # from 150 m: the grid's corners, past the
    if altitude < 100:                                                   # 40 m blind cone under the -75 deg ring;
        assert (camera & ground).sum() > 50                              # the cameras (35 deg down) look past the
        assert (lidar & building).any() and (camera & building).any()    # grid from there


def test_files_hold_the_arrays_and_grid_json_places_them(tmp_path, tiny):
    vox = SceneVoxelizer(tiny.scene)
    frame = GridFrame(3.0, -1.0, 0.0, 0.5)
    config = GTConfig(grid=tiny.spec)
    occ = occupancy_for_frame(frame, config, scene=vox, actors=ACTORS)
    path = write_occupancy(occupancy_path(tmp_path, 7), occ)
    assert path.name == "000007_occupancy.vlo" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    arrays = load_occupancy(path)
    assert set(arrays) == set(OCCUPANCY_KEYS) | {"instances"}
    for key in ("semantics", "mask_lidar", "mask_camera", "occupancy"):
        assert arrays[key].dtype == np.uint8 and arrays[key].shape == (40, 40, 20)
    # instances: the actors' ids + 1 exactly on their (dynamic) voxels, 0 elsewhere
    inst = arrays["instances"]
    assert inst.dtype == np.int32 and inst.shape == (40, 40, 20)
    for cls, iid in zip(ACTORS.semantic, ACTORS.instance):
        label = OCC3D_ID[{CityClass.CAR: "car", CityClass.PEDESTRIAN: "pedestrian", CityClass.BUS: "bus"}[cls]]
        assert (inst == iid + 1).sum() > 0 and np.all(arrays["semantics"][inst == iid + 1] == label)
    dynamic = np.isin(arrays["semantics"], [OCC3D_ID[n] for n in ("car", "pedestrian", "bus")])
    np.testing.assert_array_equal(inst > 0, dynamic)
    np.testing.assert_array_equal(arrays["semantics"], occ.semantics)
    np.testing.assert_array_equal(arrays["occupancy"], occ.semantics != FREE)
    assert arrays["mask_lidar"].sum() == 0                               # no lidar given: nothing observed
    # a voxel index maps to the world through grid.json and the frame's transform
    doc = grid_document(config, OCC3D_CLASS_NAMES)
    write_grid_json(tmp_path, doc)
    stored = json.loads((tmp_path / GRID_FILE).read_text())
    spec = GridSpec.from_json({k: stored[k] for k in ("point_cloud_range", "voxel_size", "shape")})
    car = np.argwhere(arrays["semantics"] == OCC3D_ID["car"])[0]
    world = arrays["T_world_grid"] @ np.r_[spec.centres(car[None])[0], 1.0]
    local = world[:2] - ACTORS.position[0, :2]
    c, s = np.cos(ACTORS.yaw[0]), np.sin(ACTORS.yaw[0])
    assert abs(c * local[0] + s * local[1]) <= 2.25 + 0.5 and abs(-s * local[0] + c * local[1]) <= 0.9 + 0.5
    assert stored["label_names"][stored["free_label"]] == "free" and stored["config"]["source"] == "scene"
    with pytest.raises(ValueError, match="other settings \\(config, point_cloud_range, shape, voxel_size differ\\)"):
        write_grid_json(tmp_path, grid_document(GTConfig(), OCC3D_CLASS_NAMES))
    write_grid_json(tmp_path, grid_document(GTConfig(), OCC3D_CLASS_NAMES), overwrite=True)
    assert "instances" in stored["keys"] and stored["version"] == 2
    # files written before the instances array existed still load, without it
    old = {k: v for k, v in occ.arrays().items() if k != "instances"}
    np.savez_compressed(tmp_path / "old.npz", **old)
    assert set(load_occupancy(tmp_path / "old.npz")) == set(OCCUPANCY_KEYS)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz: not a readable occupancy file"):
        load_occupancy(tmp_path / "bad.npz")


def test_config_round_trip_and_errors():
    cfg = GTConfig(source="lidar", lidar_window=3, solid_classes=("BUILDING",))
    assert GTConfig.from_dict(cfg.to_dict()) == cfg
    assert GTConfig.from_dict({"grid": "occ3d"}).grid.shape == (200, 200, 16)
    with pytest.raises(ValueError, match="unknown keys \\['windows'\\]"):
        GTConfig.from_dict({"windows": 3})
    with pytest.raises(ValueError, match="source must be one of"):
        GTConfig(source="mesh")
    with pytest.raises(ValueError, match="needs a scene"):
        occupancy_for_frame(GridFrame(0, 0, 0, 0), GTConfig())
    empty = LidarSweep(Pose.from_xyz_rpy(0, (0, 0, 0)), np.zeros((0, 8), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="priority order must name every label exactly once: missing \\['free'\\]"):
        occupancy_for_frame(GridFrame(0, 0, 0, 0), GTConfig(source="lidar", priority=OCC3D_CLASS_NAMES[:-1]),
                            sweeps=[empty])
