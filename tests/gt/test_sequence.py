"""A recorded sequence end to end: frames written atomically, finished ones skipped, broken inputs
reported with file and frame while the rest completes, workers give the same files."""

import numpy as np
import pytest

from vlwm.gt.frame_gt import GRID_FILE, GTConfig, load_occupancy, occupancy_path
from vlwm.gt.grid import GridSpec
from vlwm.gt.scene_source import SceneVoxelizer
from vlwm.gt.sequence import SequenceInputs, generate_sequence
from vlwm.gt.visibility import PinholeCamera
from vlwm.sim.camera import CameraConfig
from vlwm.io.frames import Pose
from vlwm.io.image_io import image_paths, save_depth_png
from vlwm.sim.lidar import drone_lidar, scan
from vlwm.io.sequence_writer import SequenceWriter

CAMERA = CameraConfig("CAM_FRONT", width=48, height=32, fov_x_deg=80.0, mount_rpy=(0.0, 0.6, 0.0))


@pytest.fixture
def recording(tmp_path, tiny):
    """Five drone frames over the tiny city; frame 2's lidar is garbage, frame 3's pose file is gone,
    frame 5's lidar has the wrong columns, frame 4 has no ground_z; frame 1 has a depth image."""
    lidar = drone_lidar()
    writer = SequenceWriter.create(tmp_path, "drone", {"vehicle_id": "drone_test"}, name="drone_test")
    for k in range(5):
        pose = Pose.from_xyz_rpy(0.5 * k, (-3.0 + 1.5 * k, 0.5, 9.0), (0.0, 0.0, 0.2 * k))
        writer.write_frame(pose, lidar=scan(tiny.scene.cast, pose, lidar), ground_z=None if k == 3 else 0.0)
    writer.close()
    seq = writer.path
    (seq / "lidar" / "000002_LIDAR.npy").write_bytes(b"\x93NUMPY garbage")
    (seq / "poses" / "000003.json").unlink()
    np.save(seq / "lidar" / "000005_LIDAR.npy", np.zeros((10, 3), np.float32))
    save_depth_png(image_paths(seq / "images", 1, "CAM_FRONT")[1], np.full((32, 48), 4000, np.uint16))
    return seq


def inputs(tiny, **kw):
    return SequenceInputs(T_body_lidar=drone_lidar().T_body_sensor(), cameras=(PinholeCamera.from_config(CAMERA),),
                          **kw)


def test_broken_frames_are_reported_and_the_rest_completes(recording, tiny):
    out = recording / "occupancy"
    config = GTConfig(grid=tiny.spec)
    report = generate_sequence(recording, out, config, inputs(tiny, scene=SceneVoxelizer(tiny.scene)))
    assert report.written == [1, 4] and report.skipped == []
    failed = {f.frame: f for f in report.failed}
    assert sorted(failed) == [2, 3, 5]
    assert failed[2].file.endswith("lidar/000002_LIDAR.npy") and "unreadable lidar file" in failed[2].reason
    assert failed[3].file.endswith("poses/000003.json") and failed[3].reason == "missing pose file"
    assert failed[5].file.endswith("lidar/000005_LIDAR.npy") and "expected a float array [N, 8]" in failed[5].reason
    assert "frame 2: " in report.summary() and "2 frames written" in report.summary()
    assert sorted(p.name for p in out.iterdir()) == ["000001_occupancy.vlo", "000004_occupancy.vlo", GRID_FILE]
    first = load_occupancy(occupancy_path(out, 1))
    assert first["mask_lidar"].sum() > 1000 and first["mask_camera"].sum() > 0
    assert load_occupancy(occupancy_path(out, 4))["T_world_grid"][2, 3] == 0.0   # ground_z from the scene

    again = generate_sequence(recording, out, config, inputs(tiny, scene=SceneVoxelizer(tiny.scene)))
    assert again.written == [] and again.skipped == [1, 4]
    with pytest.raises(ValueError, match="grid.json was written with other settings"):
        generate_sequence(recording, out, GTConfig(grid=GridSpec((-8, -8, -1.25, 8, 8, 8.75), (0.5, 0.5, 0.5))),
                          inputs(tiny, scene=SceneVoxelizer(tiny.scene)))


def test_workers_write_the_same_files(recording, tiny):
    config = GTConfig(grid=tiny.spec)
    vox = SceneVoxelizer(tiny.scene)
    one = generate_sequence(recording, recording / "one", config, inputs(tiny, scene=vox))
    two = generate_sequence(recording, recording / "two", config, inputs(tiny, scene=vox), workers=2)
    assert one.written == two.written == [1, 4] and [f.frame for f in two.failed] == [2, 3, 5]
    for i in one.written:
        a = load_occupancy(occupancy_path(recording / "one", i))
        b = load_occupancy(occupancy_path(recording / "two", i))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    redo = generate_sequence(recording, recording / "two", config, inputs(tiny, scene=vox), overwrite=True, workers=2)
    assert redo.written == [1, 4] and redo.skipped == []


def test_lidar_source_needs_no_scene(recording, tiny):
    config = GTConfig(grid=tiny.spec, source="lidar", lidar_window=2)
    report = generate_sequence(recording, recording / "lidar_gt", config, inputs(tiny))
    assert report.written == [1, 4]
    occ = load_occupancy(occupancy_path(recording / "lidar_gt", 4))
    assert abs(occ["T_world_grid"][2, 3]) < 0.3                          # ground_z estimated from the points
    assert occ["occupancy"].sum() > 500
    with pytest.raises(ValueError, match="--source scene needs the recording's scene"):
        generate_sequence(recording, recording / "x", GTConfig(grid=tiny.spec), inputs(tiny))
    with pytest.raises(FileNotFoundError, match="no poses/ folder"):
        generate_sequence(recording / "lidar", recording / "x", config, inputs(tiny))
